#pragma once
// A small JSON reader for the fixture manifests (test support only; the library never parses
// JSON). Enough of RFC 8259 for the files in ../shared/fixtures: objects, arrays, strings with
// escapes (\uXXXX incl. surrogate pairs), numbers, true/false/null.

#include <rwkv/utf8.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace test_json {

struct value;
using object = std::map<std::string, value, std::less<>>;
using array = std::vector<value>;

struct value {
    std::variant<std::nullptr_t, bool, double, std::string, std::shared_ptr<array>, std::shared_ptr<object>> v;

    bool is_object() const { return std::holds_alternative<std::shared_ptr<object>>(v); }
    bool is_array() const { return std::holds_alternative<std::shared_ptr<array>>(v); }
    bool is_string() const { return std::holds_alternative<std::string>(v); }
    bool is_number() const { return std::holds_alternative<double>(v); }

    const object& obj() const { return *std::get<std::shared_ptr<object>>(v); }
    const array& arr() const { return *std::get<std::shared_ptr<array>>(v); }
    const std::string& str() const { return std::get<std::string>(v); }
    double num() const { return std::get<double>(v); }
    bool boolean() const { return std::get<bool>(v); }
    bool contains(std::string_view key) const { return is_object() && obj().count(key) != 0; }

    const value& operator[](std::string_view key) const {
        auto it = obj().find(key);
        if (it == obj().end()) throw std::runtime_error("json: no key " + std::string(key));
        return it->second;
    }
    const value& operator[](std::size_t i) const { return arr().at(i); }

    template <class Int = std::int64_t>
    std::vector<Int> ints() const {
        std::vector<Int> out;
        for (const auto& e : arr()) out.push_back(static_cast<Int>(e.num()));
        return out;
    }
};

class parser {
public:
    explicit parser(std::string_view s) : s_(s) {}

    value parse() {
        value v = parse_value();
        skip_ws();
        if (pos_ != s_.size()) fail("trailing characters");
        return v;
    }

private:
    std::string_view s_;
    std::size_t pos_ = 0;

    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("json: " + what + " at offset " + std::to_string(pos_));
    }
    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
            ++pos_;
    }
    char peek() {
        skip_ws();
        if (pos_ >= s_.size()) fail("unexpected end");
        return s_[pos_];
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }
    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) == word) {
            pos_ += word.size();
            return true;
        }
        return false;
    }

    value parse_value() {
        char c = peek();
        if (c == '{') return parse_object();
        if (c == '[') return parse_array();
        if (c == '"') return value{parse_string()};
        if (literal("true")) return value{true};
        if (literal("false")) return value{false};
        if (literal("null")) return value{nullptr};
        return value{parse_number()};
    }

    value parse_object() {
        expect('{');
        auto o = std::make_shared<object>();
        if (peek() == '}') {
            ++pos_;
            return value{o};
        }
        for (;;) {
            if (peek() != '"') fail("expected key");
            std::string k = parse_string();
            expect(':');
            (*o)[k] = parse_value();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            expect('}');
            return value{o};
        }
    }

    value parse_array() {
        expect('[');
        auto a = std::make_shared<array>();
        if (peek() == ']') {
            ++pos_;
            return value{a};
        }
        for (;;) {
            a->push_back(parse_value());
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            expect(']');
            return value{a};
        }
    }

    double parse_number() {
        std::size_t start = pos_;
        while (pos_ < s_.size() && std::string_view("+-0123456789.eE").find(s_[pos_]) != std::string_view::npos) ++pos_;
        if (start == pos_) fail("bad value");
        return std::stod(std::string(s_.substr(start, pos_ - start)));
    }

    unsigned hex4() {
        if (pos_ + 4 > s_.size()) fail("short \\u escape");
        unsigned v = static_cast<unsigned>(std::stoul(std::string(s_.substr(pos_, 4)), nullptr, 16));
        pos_ += 4;
        return v;
    }

    static void put_utf8(std::string& out, std::uint32_t cp) { rwkv::append_utf8(out, cp); }

    std::string parse_string() {
        expect('"');
        std::string out;
        while (pos_ < s_.size()) {
            char c = s_[pos_++];
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) break;
            char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    std::uint32_t cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
                        pos_ += 2;
                        std::uint32_t lo = hex4();
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    put_utf8(out, cp);
                    break;
                }
                default: fail("bad escape");
            }
        }
        fail("unterminated string");
    }
};

inline value parse(std::string_view text) { return parser(text).parse(); }

}  // namespace test_json
