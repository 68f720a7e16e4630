// A consumer of the installed package: rwkv::Session generates text, and a saved session continues
// exactly like the uninterrupted one. argv[1]: a byte-level model; argv[2]: a scratch file.
#include <rwkv/model.hpp>
#include <rwkv/session.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    rwkv::Session session(rwkv::AnyModel::load(argv[1]), rwkv::AnyTokenizer::bytes(), {.temperature = 0.8, .seed = 1});
    session.prompt("The");
    session.generate(20, [](std::string_view text) { return std::fwrite(text.data(), 1, text.size(), stdout) > 0; });
    session.save(argv[2]);
    const std::string uninterrupted = session.generate(30).text;

    rwkv::Session restored(session.model(), rwkv::AnyTokenizer::bytes());
    restored.load(argv[2]);
    const std::string continued = restored.generate(30).text;
    std::printf("\nlayers %d, continued exactly: %s\n", session.model().config().n_layer,
                continued == uninterrupted ? "yes" : "no");
    return continued == uninterrupted && !continued.empty() ? 0 : 1;
}
