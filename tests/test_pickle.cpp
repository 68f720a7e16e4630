// rwkv::io::pickle: the torch.save pickle subset, the allowlist of globals, and refusal of
// hostile or broken streams.

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "errors.hpp"
#include "pickle_builder.hpp"
#include "rwkv/io/pickle.hpp"

namespace pk = rwkv::io::pickle;
using namespace std::string_literals;
using rwkv::io::dtype;
using test_support::error_of;
using test_support::pickle_builder;

namespace {

pk::document load(const std::string& s, const pk::limits& lim = {}) {
    return pk::load(test_support::span_of(s), "f.pth: a/data.pkl", lim);
}

std::string load_error(const std::string& s, const pk::limits& lim = {}) {
    return error_of([&] { load(s, lim); });
}

// The stream of spec 8.1's emulated one-tensor state dict (OrderedDict + _metadata BUILD).
std::string spec_trace() {
    pickle_builder p;
    p.proto(2).ordered_dict().put(0).mark().str("emb.weight").put(1);
    p.global("torch._utils", "_rebuild_tensor_v2").put(2).mark();
    p.mark().str("storage").global("torch", "BFloat16Storage").put(3).str("0").str("cpu");
    p.i4(134217728).tuple().op('Q').i1(0).i4(65536).i2(2048).op(0x86).i2(2048).i1(1).op(0x86);
    p.op(0x89).ordered_dict().tuple().reduce().setitems();
    // state = {'_metadata': OrderedDict({'': {'version': 1}})}
    p.empty_dict().str("_metadata").ordered_dict().str("").empty_dict().str("version").i1(1);
    p.op('s').op('s').op('s').op('b').stop();
    return p.b;
}

}  // namespace

TEST_CASE("pickle: scalars", "[pickle]") {
    pickle_builder p;
    p.proto(2).mark();
    p.i1(255).i2(65535).i4(-5).i4(2147483647);
    p.long1("").long1("\xff").long1(std::string("\x00\x80", 2)).long1("\x01\x02\x03\x04\x05");
    p.long1(std::string("\x00\x00\x00\x00\x00\x00\x00\x80", 8));
    p.op('N').op(0x88).op(0x89);
    p.op('G').raw(std::string("\x3f\xf8\x00\x00\x00\x00\x00\x00", 8));  // 1.5, big-endian
    p.op('G').raw(std::string("\xc0\x09\x21\xfb\x54\x44\x2d\x18", 8));  // -pi
    p.str("héllo").short_str("ab").str8("").tuple().stop();
    const pk::document d = load(p.b);
    const auto& t = d.items(d.root);
    REQUIRE(t.size() == 17);
    const std::int64_t ints[] = {255, 65535, -5, 2147483647, 0, -1, -32768, 0x0504030201, INT64_MIN};
    for (int i = 0; i < 9; ++i) {
        CHECK(t[i].type == pk::kind::integer);
        CHECK(t[i].i == ints[i]);
    }
    CHECK(t[9].type == pk::kind::none);
    CHECK((t[10].type == pk::kind::boolean && t[10].i == 1));
    CHECK((t[11].type == pk::kind::boolean && t[11].i == 0));
    CHECK((t[12].type == pk::kind::real && t[12].f == 1.5));
    CHECK((t[13].type == pk::kind::real && t[13].f == -3.141592653589793));
    CHECK(d.str(t[14]) == "héllo");
    CHECK(d.str(t[15]) == "ab");
    CHECK(d.str(t[16]).empty());
}

TEST_CASE("pickle: containers and the memo", "[pickle]") {
    SECTION("lists, dicts, tuples") {
        pickle_builder p;
        p.proto(2).op(']').i1(1).op('a').mark().i1(2).i1(3).op('e').put(0);
        p.empty_dict().str("k").i1(7).op('s').mark().str("a").op('N').str("b").get(0);
        p.setitems().i1(8).i1(9).op(0x85).op(0x86).op(0x87).stop();  // (list, dict, (8, (9,)))
        const pk::document d = load(p.b);
        const auto& top = d.items(d.root);
        REQUIRE(top.size() == 3);
        const auto& list = d.items(top[0]);
        REQUIRE(list.size() == 3);
        CHECK(list[2].i == 3);
        const auto& dict = d.dict(top[1]);
        CHECK_FALSE(dict.ordered);
        REQUIRE(dict.items.size() == 3);
        CHECK(d.str(dict.items[0].first) == "k");
        CHECK(dict.items[0].second.i == 7);
        CHECK(d.str(dict.items[2].first) == "b");
        CHECK(d.items(dict.items[2].second).size() == 3);  // the memoised list
        CHECK(d.items(top[2]).size() == 2);
        CHECK(d.items(d.items(top[2])[1]).size() == 1);
    }
    SECTION("memo entries refer to the same object") {
        pickle_builder p;
        p.proto(2).empty_dict().op('r').le(70000, 4).op('0').stop();  // POP leaves nothing to STOP with
        CHECK_THAT(load_error(p.b), Catch::Contains("pickle stack underflow"));
        pickle_builder q;
        q.proto(2).empty_dict().op('r').le(70000, 4).op('j').le(70000, 4).str("x").i1(1).op('s');
        q.op(0x86).stop();  // (d, d) after d['x'] = 1 through the second reference
        const pk::document d = load(q.b);
        const auto& pair = d.items(d.root);
        CHECK(d.dict(pair[0]).items.size() == 1);
        CHECK(d.dict(pair[1]).items.size() == 1);
    }
    SECTION("a list that contains itself is harmless") {
        pickle_builder p;
        p.proto(2).op(']').put(0).get(0).op('a').stop();
        const pk::document d = load(p.b);
        CHECK(d.items(d.root).size() == 1);
        CHECK(d.items(d.root)[0].i == d.root.i);
    }
    SECTION("deep nesting neither recurses nor overflows") {
        pickle_builder p;
        p.proto(2);
        const int depth = 200000;
        for (int i = 0; i < depth; ++i) p.op(']');
        for (int i = 1; i < depth; ++i) p.op('a');
        p.stop();
        const pk::document d = load(p.b);
        CHECK(d.sequences.size() == depth);
    }
}

TEST_CASE("pickle: the spec's state-dict trace", "[pickle]") {
    const pk::document d = load(spec_trace());
    const pk::dict_ref& root = d.dict(d.root);
    CHECK(root.ordered);
    REQUIRE(root.items.size() == 1);
    CHECK(d.str(root.items[0].first) == "emb.weight");
    const pk::tensor_ref& t = d.tensor(root.items[0].second);
    CHECK(t.shape == std::vector<std::int64_t>{65536, 2048});
    CHECK(t.stride == std::vector<std::int64_t>{2048, 1});
    CHECK(t.storage_offset == 0);
    CHECK_FALSE(t.requires_grad);
    const pk::storage_ref& s = d.storages[t.storage];
    CHECK(s.type == dtype::bf16);
    CHECK(s.key == "0");
    CHECK(s.location == "cpu");
    CHECK(s.numel == 134217728);
}

TEST_CASE("pickle: protocol 4 opcodes", "[pickle]") {
    pickle_builder p;
    p.proto(4).op(0x95).le(100, 8);                                         // FRAME
    p.short_str("collections").op(0x94).short_str("OrderedDict").op(0x94);  // memo 0, 1
    p.op(0x93).op(0x94).empty_tuple().reduce().op(0x94);                    // memo 2 class, 3 dict
    p.mark().short_str("w").op(0x94);                                       // memo 4
    p.short_str("torch._utils").short_str("_rebuild_tensor_v2").op(0x93).op(0x94);
    p.mark();  // seven arguments, the last one (metadata) ignored
    p.mark().short_str("storage").short_str("torch").short_str("HalfStorage").op(0x93);
    p.short_str("3").short_str("cuda:0").i1(6).tuple().op('Q');
    p.i1(2).i1(4).op(0x85).i1(1).op(0x85).op(0x88).get(2).empty_tuple().reduce().op(']');
    p.tuple().reduce().setitems().stop();
    const pk::document d = load(p.b);
    const auto& root = d.dict(d.root);
    REQUIRE(root.items.size() == 1);
    const pk::tensor_ref& t = d.tensor(root.items[0].second);
    CHECK(t.storage_offset == 2);
    CHECK(t.shape == std::vector<std::int64_t>{4});
    CHECK(t.requires_grad);
    CHECK(d.storages[t.storage].type == dtype::f16);
    CHECK(d.storages[t.storage].location == "cuda:0");
}

TEST_CASE("pickle: parameters and _rebuild_from_type_v2 unwrap to the tensor", "[pickle]") {
    pickle_builder p;
    p.proto(2).empty_dict().mark().str("a");
    p.global("torch._utils", "_rebuild_parameter").mark();
    p.tensor("FloatStorage", "0", 4, 0, {4}, {1}).op(0x88).ordered_dict().tuple().reduce();
    p.str("b").global("torch._tensor", "_rebuild_from_type_v2").mark();
    p.global("torch._utils", "_rebuild_tensor_v2").global("torch.nn.parameter", "Parameter");
    p.mark().mark().str("storage").global("torch", "DoubleStorage").str("1").str("cpu").i1(2);
    p.tuple().op('Q').i1(0).i1(2).op(0x85).i1(1).op(0x85).op(0x89).ordered_dict().tuple();
    p.empty_dict().tuple().reduce().setitems().stop();
    const pk::document d = load(p.b);
    const auto& items = d.dict(d.root).items;
    REQUIRE(items.size() == 2);
    CHECK(d.storages[d.tensor(items[0].second).storage].type == dtype::f32);
    CHECK(d.storages[d.tensor(items[1].second).storage].type == dtype::f64);
    CHECK(d.tensor(items[1].second).shape == std::vector<std::int64_t>{2});
}

TEST_CASE("pickle: every storage class of the spec table", "[pickle]") {
    const std::pair<const char*, dtype> table[] = {
        {"FloatStorage", dtype::f32},    {"HalfStorage", dtype::f16}, {"BFloat16Storage", dtype::bf16},
        {"DoubleStorage", dtype::f64},   {"LongStorage", dtype::i64}, {"IntStorage", dtype::i32},
        {"ShortStorage", dtype::i16},    {"CharStorage", dtype::i8},  {"ByteStorage", dtype::u8},
        {"BoolStorage", dtype::boolean},
    };
    for (const auto& [name, type] : table) {
        pickle_builder p;
        p.proto(2).tensor(name, "k", 1, 0, {}, {}).stop();
        const pk::document d = load(p.b);
        CHECK(d.storages[d.tensor(d.root).storage].type == type);
        CHECK(d.tensor(d.root).shape.empty());
    }
}

TEST_CASE("pickle: refuses globals outside the allowlist", "[pickle]") {
    SECTION("GLOBAL os system") {
        pickle_builder p;
        p.proto(2).global("os", "system").str("echo pwned").op(0x85).reduce().stop();
        const std::string msg = load_error(p.b);
        CHECK(msg.rfind("f.pth: a/data.pkl: ", 0) == 0);
        CHECK_THAT(msg, Catch::Contains("unsupported object in checkpoint: os.system"));
    }
    SECTION("STACK_GLOBAL builtins eval") {
        pickle_builder p;
        p.proto(4).short_str("builtins").short_str("eval").op(0x93).stop();
        CHECK_THAT(load_error(p.b), Catch::Contains("unsupported object in checkpoint: builtins.eval"));
    }
    SECTION("other torch functions") {
        pickle_builder p;
        p.proto(2).global("torch", "load").stop();
        CHECK_THAT(load_error(p.b), Catch::Contains("unsupported object in checkpoint: torch.load"));
        pickle_builder q;
        q.proto(2).global("torch", "ComplexFloatStorage").stop();
        CHECK_THAT(load_error(q.b), Catch::Contains("torch.ComplexFloatStorage"));
    }
    SECTION("calling a storage class") {
        pickle_builder p;
        p.proto(2).global("torch", "FloatStorage").empty_tuple().reduce().stop();
        CHECK_THAT(load_error(p.b), Catch::Contains("unsupported object in checkpoint: torch.FloatStorage"));
    }
    SECTION("_rebuild_from_type_v2 cannot wrap itself") {
        pickle_builder p;
        p.proto(2).global("torch._utils", "_rebuild_from_type_v2").put(0).mark().get(0);
        p.global("torch", "Tensor").empty_tuple().op('N').tuple().reduce().stop();
        CHECK_THAT(load_error(p.b), Catch::Contains("unsupported function"));
    }
}

TEST_CASE("pickle: malformed streams throw rwkv::error naming opcode and offset", "[pickle]") {
    SECTION("unknown opcode") {
        pickle_builder p;
        p.proto(2).op('N').op(0xfe).stop();
        const std::string msg = load_error(p.b);
        CHECK(msg.rfind("f.pth: a/data.pkl: ", 0) == 0);
        CHECK_THAT(msg, Catch::Contains("unknown pickle opcode 0xfe"));
        CHECK_THAT(msg, Catch::Contains("offset 3"));
    }
    SECTION("stack underflow") {
        CHECK_THAT(load_error("\x80\x02."s), Catch::Contains("underflow"));
        CHECK_THAT(load_error("\x80\x02NR"s), Catch::Contains("underflow"));
        CHECK_THAT(load_error("\x80\x02N(."s), Catch::Contains("underflow"));  // mark hides N
        CHECK_THAT(load_error("\x80\x02q\x00"s), Catch::Contains("underflow"));
    }
    SECTION("memo miss") {
        CHECK_THAT(load_error("\x80\x02h\x05."s), Catch::Contains("memo key 5"));
        CHECK_THAT(load_error("\x80\x02j\x00\x00\x01\x00."s), Catch::Contains("memo key 65536"));
    }
    SECTION("missing mark") { CHECK_THAT(load_error("\x80\x02Nt."s), Catch::Contains("MARK")); }
    SECTION("no STOP") { CHECK_THAT(load_error("\x80\x02N"s), Catch::Contains("no STOP")); }
    SECTION("empty input") { CHECK_THAT(load_error(""), Catch::Contains("no STOP")); }
    SECTION("protocol too new") { CHECK_THAT(load_error("\x80\x06N."s), Catch::Contains("protocol 6")); }
    SECTION("huge lengths are checked before allocating") {
        CHECK_THAT(load_error("\x80\x02X\xff\xff\xff\xff"
                              "abc."s),
                   Catch::Contains("truncated"));
        pickle_builder p;
        p.proto(4).op(0x8d).le(~std::uint64_t{0}, 8).raw("abc");
        CHECK_THAT(load_error(p.b), Catch::Contains("truncated"));
    }
    SECTION("LONG1 wider than 64 bits") {
        pickle_builder p;
        p.proto(2).long1(std::string(9, '\1')).stop();
        CHECK_THAT(load_error(p.b), Catch::Contains("too large"));
    }
    SECTION("container misuse") {
        CHECK_THAT(load_error("\x80\x02NNa."s), Catch::Contains("non-list"));
        CHECK_THAT(load_error("\x80\x02NNNs."s), Catch::Contains("non-dict"));
        CHECK_THAT(load_error("\x80\x02}(Nu."s), Catch::Contains("odd"));
        CHECK_THAT(load_error("\x80\x02NNb."s), Catch::Contains("BUILD"));
    }
    SECTION("bad persistent ids and tensor arguments") {
        pickle_builder p;
        p.proto(2).mark().str("storage").str("FloatStorage").str("0").str("cpu").i1(1);
        p.tuple().op('Q').stop();
        CHECK_THAT(load_error(p.b), Catch::Contains("storage class"));
        CHECK_THAT(load_error("\x80\x02NQ."s), Catch::Contains("persistent id"));
        pickle_builder q;
        q.proto(2).global("torch._utils", "_rebuild_tensor_v2").mark().op('N').i1(0).empty_tuple();
        q.empty_tuple().op(0x89).op('N').tuple().reduce().stop();
        CHECK_THAT(load_error(q.b), Catch::Contains("not a storage"));
    }
    SECTION("limits") {
        pickle_builder p;
        p.proto(2).mark();
        for (int i = 0; i < 200; ++i) p.op('N');
        p.tuple().stop();
        pk::limits lim;
        lim.max_values = 100;
        CHECK_THAT(load_error(p.b, lim), Catch::Contains("more than 100 values"));
        lim = {};
        lim.max_input_bytes = 16;
        CHECK_THAT(load_error(p.b, lim), Catch::Contains("limit"));
        CHECK_NOTHROW(load(p.b));
    }
}

TEST_CASE("pickle: every truncation and random corruption throws rwkv::error or loads", "[pickle]") {
    const std::string good = spec_trace();
    REQUIRE_NOTHROW(load(good));
    for (std::size_t n = 0; n < good.size(); ++n) {
        INFO("truncated to " << n);
        CHECK_THROWS_AS(load(good.substr(0, n)), rwkv::error);
    }
    std::mt19937 rng(42);
    for (int iter = 0; iter < 20000; ++iter) {
        std::string s = good;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips; ++f) s[rng() % s.size()] = static_cast<char>(rng() & 0xFF);
        try {
            load(s);
        } catch (const rwkv::error&) {}
    }
    for (int iter = 0; iter < 5000; ++iter) {  // pure noise, biased to opcode bytes
        std::string s(rng() % 64, '\0');
        const std::string alphabet = "\x80\x02}q(Xhjrtu)sQRb.KN]ae\x85\x86\x87\x8a\x8c\x93\x94\x95"s;
        for (char& c : s) c = alphabet[rng() % alphabet.size()];
        try {
            load(s);
        } catch (const rwkv::error&) {}
    }
    SUCCEED("no crash, no sanitizer report");
}

// ---- every protocol torch.save can write (issue 12) ----------------------------------------------

namespace {

std::string corpus_pickle(const std::string& name) {
    std::ifstream in(std::string(RWKV_SOURCE_DIR) + "/tests/fuzz/corpus/pickle/" + name, std::ios::binary);
    REQUIRE(in);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

const pk::value* lookup(const pk::document& d, pk::value dict, const std::string& key) {
    for (const auto& [k, v] : d.dict(dict).items)
        if (k.type == pk::kind::string && d.str(k) == key) return &v;
    return nullptr;
}

}  // namespace

TEST_CASE("pickle: state dicts written by CPython's pickler at protocols 1 to 5", "[pickle]") {
    // tools/make-fuzz-seeds.py: CPython's own pickler with stand-ins for the torch globals.
    for (int proto = 1; proto <= 5; ++proto) {
        INFO("protocol " << proto);
        const pk::document d = load(corpus_pickle("state-dict-proto" + std::to_string(proto) + ".pkl"));
        REQUIRE(d.root.type == pk::kind::dict);
        const pk::value* emb = lookup(d, d.root, "emb.weight");
        REQUIRE(emb);
        const pk::tensor_ref& t = d.tensor(*emb);
        CHECK(t.shape == std::vector<std::int64_t>{2, 3});
        CHECK(t.stride == std::vector<std::int64_t>{3, 1});
        CHECK(d.storages[t.storage].type == dtype::f32);
        CHECK(d.storages[t.storage].key == "0");
        const pk::tensor_ref& ts = d.tensor(*lookup(d, d.root, "blocks.0.att.time_state"));
        CHECK(d.storages[ts.storage].type == dtype::f64);
        const pk::tensor_ref& wt = d.tensor(*lookup(d, d.root, "w.t"));
        CHECK(wt.stride == std::vector<std::int64_t>{1, 3});
        CHECK(lookup(d, d.root, "big")->i == (std::int64_t{1} << 40));
        CHECK(lookup(d, d.root, "neg")->i == -5);
        CHECK(lookup(d, d.root, "f")->f == 0.5);
        const pk::value* flag = lookup(d, d.root, "flag");
        CHECK(flag->type == pk::kind::boolean);  // protocol 1 writes it as INT "01"
        CHECK(flag->i == 1);
        if (proto >= 3) CHECK(d.str(*lookup(d, d.root, "b")) == "\x00\x01"s);
    }
}

TEST_CASE("pickle: protocol 0 text opcodes for plain values", "[pickle]") {
    const pk::document d = load(corpus_pickle("state-dict-proto0-values.pkl"));
    CHECK(lookup(d, d.root, "i")->i == 7);
    CHECK(lookup(d, d.root, "neg")->i == -3);
    CHECK(lookup(d, d.root, "big")->i == (std::int64_t{1} << 40));
    CHECK(lookup(d, d.root, "f")->f == 0.25);
    CHECK(lookup(d, d.root, "t")->type == pk::kind::boolean);
    CHECK(d.items(*lookup(d, d.root, "l")).size() == 2);
    CHECK(lookup(d, d.root, "n")->type == pk::kind::none);
}

TEST_CASE("pickle: protocol 1-5 opcodes one by one", "[pickle]") {
    SECTION("text INT/LONG/FLOAT, PUT/GET, LIST/DICT, DUP/POP/POP_MARK") {
        pickle_builder p;
        p.mark().str("a").raw("I42\n").str("b").raw("L-7L\n").str("c").raw("F1.5\n");
        p.str("d").mark().raw("I00\n").raw("p5\n").op('2').op('0').raw("g5\n").op('l').op('d');
        p.mark().i1(1).op('1').stop();  // POP_MARK then STOP pops the dict again
        const pk::document d = load(p.b);
        REQUIRE(d.root.type == pk::kind::dict);
        CHECK(lookup(d, d.root, "a")->i == 42);
        CHECK(lookup(d, d.root, "b")->i == -7);
        CHECK(lookup(d, d.root, "c")->f == 1.5);
        const auto& l = d.items(*lookup(d, d.root, "d"));
        REQUIRE(l.size() == 2);
        CHECK(l[0].type == pk::kind::boolean);
        CHECK(l[1].type == pk::kind::boolean);
    }
    SECTION("bytes, sets, LONG4, NEWOBJ of an allowlisted class") {
        pickle_builder p;
        p.proto(4).op('}').mark();
        p.str("bytes").op('C').le(2, 1).raw("hi").str("bytes8").op(0x8e).le(1, 8).raw("x");
        p.str("set").op(0x8f).mark().i1(1).i1(2).op(0x90).str("long4").op(0x8b).le(2, 4).raw("\xff\x7f");
        p.str("od").global("collections", "OrderedDict").empty_tuple().op(0x81);
        p.setitems().stop();
        const pk::document d = load(p.b);
        CHECK(d.str(*lookup(d, d.root, "bytes")) == "hi");
        CHECK(d.str(*lookup(d, d.root, "bytes8")) == "x");
        CHECK(d.items(*lookup(d, d.root, "set")).size() == 2);
        CHECK(lookup(d, d.root, "long4")->i == 0x7fff);
        CHECK(lookup(d, d.root, "od")->type == pk::kind::dict);
    }
    SECTION("refusals name the opcode's problem") {
        CHECK_THAT(load_error("I12x\n."s), Catch::Contains("bad INT text '12x'"));
        CHECK_THAT(load_error("Fnanx\n."s), Catch::Contains("bad FLOAT text"));
        CHECK_THAT(load_error("Np-1\n."s), Catch::Contains("memo key -1 is out of range"));
        CHECK_THAT(load_error("S'x'\n."s), Catch::Contains("unknown pickle opcode 0x53"));
        CHECK_THAT(load_error("\x8b\x09\x00\x00\x00"s + std::string(9, '\0') + "."),
                   Catch::Contains("integer of 9 bytes"));
        CHECK_THAT(load_error("\x97."s), Catch::Contains("out-of-band buffers"));
        CHECK_THAT(load_error("\x82\x01."s), Catch::Contains("extension registry"));
        CHECK_THAT(load_error("(I1\nI2\nI3\nd."s), Catch::Contains("DICT with an odd number"));
        CHECK_THAT(load_error("cos\nsystem\n)\x81."s), Catch::Contains("unsupported object in checkpoint: os.system"));
    }
}

TEST_CASE("pickle: a dict holding itself loads; documents may be cyclic", "[pickle][regression]") {
    // Found by fuzz_pickle (regressions/pickle/self-containing-dict): nothing in the library walks
    // a document recursively, so a cycle made through the memo is just data.
    pickle_builder p;
    p.proto(2).empty_dict().put(0).str("me").get(0).op('s').stop();
    const pk::document d = load(p.b);
    REQUIRE(d.root.type == pk::kind::dict);
    const auto& items = d.dict(d.root).items;
    REQUIRE(items.size() == 1);
    CHECK(items[0].second.type == pk::kind::dict);
    CHECK(items[0].second.i == d.root.i);
    std::ifstream in(std::string(RWKV_SOURCE_DIR) + "/tests/fuzz/regressions/pickle/self-containing-dict",
                     std::ios::binary);
    REQUIRE(in);
    const pk::document fuzzed = load(std::string((std::istreambuf_iterator<char>(in)), {}));
    CHECK(fuzzed.root.type == pk::kind::dict);
}
