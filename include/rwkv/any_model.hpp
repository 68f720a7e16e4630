#pragma once
// rwkv::AnyModel — a model whose weight type is chosen at run time from the file: open any
// supported checkpoint without naming T. Same forward/state API as Model<T>. The C API, the
// CLIs and the server stand on it.
//
//   auto model = rwkv::AnyModel::load("RWKV-x060-World-1B6-v2.1.pth");
//   auto state = model.new_state();
//   std::span<const float> logits = model.forward(std::span<const rwkv::token>(ids), state);

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"
#include "error.hpp"
#include "state.hpp"
#include "token.hpp"

namespace rwkv {

class AnyModel {
public:
    // Called with (blocks done, blocks total) while a model is being built.
    using Progress = std::function<void(int done, int total)>;

    // Opens `path` and keeps every tensor in the type the file holds (zero copy where the
    // bytes are usable as stored). Throws rwkv::error naming the file for anything it cannot
    // read. Defined in model.hpp (it needs every Model instantiation).
    static AnyModel load(const std::filesystem::path& path, const Progress& progress = {});

    // Wraps a typed model (shares its weights).
    template <class M>
    explicit AnyModel(M model) : impl_(std::make_shared<Holder<M>>(std::move(model))) {}

    const Config& config() const { return impl_->config(); }
    // The reader's notes about the file (see Model::notes).
    const std::vector<std::string>& notes() const { return impl_->notes(); }
    State new_state() const { return impl_->new_state(); }
    // Resets `s` to the model's initial state (zeros, or a state-tuned checkpoint's time_state).
    void reset(State& s) const { impl_->reset(s); }

    // Logits [vocab_size] after the token(s); valid until the next call with this state. Token
    // ids are checked (rwkv::error, state untouched); see Model::forward.
    std::span<const float> forward(token t, State& s) const { return impl_->forward(std::span<const token>(&t, 1), s); }
    std::span<const float> forward(std::span<const token> tokens, State& s) const { return impl_->forward(tokens, s); }
    // One token for each of B sequences; B rows of logits (see Model::forward_batch).
    std::span<const float> forward_batch(std::span<const token> tokens, std::span<State* const> states) const {
        return impl_->forward_batch(tokens, states);
    }
    // Batched prefill: prompts[b] continues states[b]; B rows of last-token logits.
    std::span<const float> forward_batch(std::span<const std::span<const token>> prompts,
                                         std::span<State* const> states) const {
        return impl_->forward_batch_prompts(prompts, states);
    }
    // Logits of every token: `out` holds tokens.size() × vocab_size floats.
    void forward_all(std::span<const token> tokens, State& s, std::span<float> out) const {
        impl_->forward_all(tokens, s, out);
    }

    // Threads used by forward (the caller's included); throws rwkv::error for n < 1.
    void set_threads(int n) { impl_->set_threads(n); }
    int threads() const { return impl_->threads(); }

    // The weight type(s) in memory, e.g. "bfloat16" or "stored: BF16 (+F32)".
    std::string weight_type() const { return impl_->weight_type(); }

    // The typed model's opt-in numeric modes (they change logits; see Model::set_int8_activations
    // and Model::set_bf16_activations for what each affects). Like set_threads, a mode set here
    // holds for every copy of this AnyModel (they share one typed model). Turning a mode on for a
    // model type that has none (e.g. a user-defined model wrapped in AnyModel) throws
    // rwkv::error; turning it off is always allowed.
    void set_int8_activations(bool on) { impl_->set_int8_activations(on); }
    bool int8_activations() const { return impl_->int8_activations(); }
    void set_bf16_activations(bool on) { impl_->set_bf16_activations(on); }
    bool bf16_activations() const { return impl_->bf16_activations(); }

private:
    struct Interface {
        virtual ~Interface() = default;
        virtual const Config& config() const = 0;
        virtual const std::vector<std::string>& notes() const = 0;
        virtual State new_state() const = 0;
        virtual void reset(State&) const = 0;
        virtual std::span<const float> forward(std::span<const token>, State&) const = 0;
        virtual void forward_all(std::span<const token>, State&, std::span<float>) const = 0;
        virtual std::span<const float> forward_batch(std::span<const token>, std::span<State* const>) const = 0;
        virtual std::span<const float> forward_batch_prompts(std::span<const std::span<const token>>,
                                                             std::span<State* const>) const = 0;
        virtual void set_threads(int) = 0;
        virtual int threads() const = 0;
        virtual std::string weight_type() const = 0;
        virtual void set_int8_activations(bool) = 0;
        virtual bool int8_activations() const = 0;
        virtual void set_bf16_activations(bool) = 0;
        virtual bool bf16_activations() const = 0;
    };

    template <class M>
    struct Holder final : Interface {
        explicit Holder(M m) : model(std::move(m)) {}
        const Config& config() const override { return model.config(); }
        const std::vector<std::string>& notes() const override {
            if constexpr (requires { model.notes(); }) {
                return model.notes();
            } else {
                static const std::vector<std::string> none;
                return none;
            }
        }
        State new_state() const override { return model.new_state(); }
        void reset(State& s) const override { model.reset(s); }
        std::span<const float> forward(std::span<const token> t, State& s) const override {
            return model.forward(t, s);
        }
        void forward_all(std::span<const token> t, State& s, std::span<float> out) const override {
            model.forward_all(t, s, out);
        }
        std::span<const float> forward_batch(std::span<const token> t, std::span<State* const> s) const override {
            return model.forward_batch(t, s);
        }
        std::span<const float> forward_batch_prompts(std::span<const std::span<const token>> p,
                                                     std::span<State* const> s) const override {
            if constexpr (requires { model.forward_batch(p, s); }) {
                return model.forward_batch(p, s);
            } else {
                throw error("forward_batch: this model type has no batched prefill");
            }
        }
        // set_threads on a shared holder would change every copy of this AnyModel: copies of
        // an AnyModel share one typed model handle, like copies of a Model share weights.
        void set_threads(int n) override { model.set_threads(n); }
        int threads() const override { return model.threads(); }
        std::string weight_type() const override { return model.weight_type(); }
        void set_int8_activations(bool on) override {
            if constexpr (requires { model.set_int8_activations(on); }) model.set_int8_activations(on);
            else if (on) throw error("set_int8_activations: this model type has no int8-activation mode");
        }
        bool int8_activations() const override {
            if constexpr (requires { model.int8_activations(); }) return model.int8_activations();
            else return false;
        }
        void set_bf16_activations(bool on) override {
            if constexpr (requires { model.set_bf16_activations(on); }) model.set_bf16_activations(on);
            else if (on) throw error("set_bf16_activations: this model type has no bf16-activation mode");
        }
        bool bf16_activations() const override {
            if constexpr (requires { model.bf16_activations(); }) return model.bf16_activations();
            else return false;
        }
        M model;
    };

    std::shared_ptr<Interface> impl_;
};

}  // namespace rwkv
