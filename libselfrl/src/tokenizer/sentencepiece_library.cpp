// Loading the selfrl_spm module and the SentencePieceModel wrapper
// (see selfrl/tokenizer/sentencepiece_library.h).
#include "selfrl/tokenizer/sentencepiece_library.h"

#include <dlfcn.h>

#include <filesystem>
#include <mutex>

#include "spm_shim.h"
#include "selfrl/core/error.h"
#include "selfrl/io/file_util.h"

namespace selfrl::tokenizer {
namespace {

struct Api {
  decltype(&selfrl_spm_load) load;
  decltype(&selfrl_spm_free) free_model;
  decltype(&selfrl_spm_encode) encode;
  decltype(&selfrl_spm_decode) decode;
  decltype(&selfrl_spm_release) release;
  decltype(&selfrl_spm_piece_size) piece_size;
  decltype(&selfrl_spm_id_to_piece) id_to_piece;
  decltype(&selfrl_spm_piece_to_id) piece_to_id;
  decltype(&selfrl_spm_special_id) special_id;
  decltype(&selfrl_spm_is_control) is_control;
  decltype(&selfrl_spm_is_byte) is_byte;
  decltype(&selfrl_spm_train) train;
};

const Api& api() {
  static Api a;
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    const std::string path = sentencepiece_module_path();
    void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (h == nullptr) {
      const char* e = ::dlerror();
      failure = "cannot load the sentencepiece module " + path + ": " + (e ? e : "unknown error");
      return;
    }
    auto sym = [&](const char* name) {
      void* s = ::dlsym(h, name);
      if (s == nullptr && failure.empty()) failure = std::string("sentencepiece module lacks ") + name;
      return s;
    };
    a.load = reinterpret_cast<decltype(a.load)>(sym("selfrl_spm_load"));
    a.free_model = reinterpret_cast<decltype(a.free_model)>(sym("selfrl_spm_free"));
    a.encode = reinterpret_cast<decltype(a.encode)>(sym("selfrl_spm_encode"));
    a.decode = reinterpret_cast<decltype(a.decode)>(sym("selfrl_spm_decode"));
    a.release = reinterpret_cast<decltype(a.release)>(sym("selfrl_spm_release"));
    a.piece_size = reinterpret_cast<decltype(a.piece_size)>(sym("selfrl_spm_piece_size"));
    a.id_to_piece = reinterpret_cast<decltype(a.id_to_piece)>(sym("selfrl_spm_id_to_piece"));
    a.piece_to_id = reinterpret_cast<decltype(a.piece_to_id)>(sym("selfrl_spm_piece_to_id"));
    a.special_id = reinterpret_cast<decltype(a.special_id)>(sym("selfrl_spm_special_id"));
    a.is_control = reinterpret_cast<decltype(a.is_control)>(sym("selfrl_spm_is_control"));
    a.is_byte = reinterpret_cast<decltype(a.is_byte)>(sym("selfrl_spm_is_byte"));
    a.train = reinterpret_cast<decltype(a.train)>(sym("selfrl_spm_train"));
  });
  if (!failure.empty()) {
    throw Error(failure).hint(
        "reinstall libselfrl: libselfrl_spm.so must sit next to libselfrl.so, and libsentencepiece0 be installed");
  }
  return a;
}

}  // namespace

std::string sentencepiece_module_path() {
  if (const char* env = std::getenv("SELFRL_SPM_MODULE"); env != nullptr && *env != '\0') return env;
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&sentencepiece_module_path), &info) != 0 && info.dli_fname != nullptr) {
    return (std::filesystem::path(info.dli_fname).parent_path() / "libselfrl_spm.so").string();
  }
  return "libselfrl_spm.so";
}

std::shared_ptr<SentencePieceModel> SentencePieceModel::load(const std::string& path) {
  const Api& a = api();
  if (!std::filesystem::exists(path)) throw Error("sentencepiece model not found").at(path);
  // A directory, FIFO or device (/dev/zero) is refused before the module opens it: reading one
  // would fail with a bare stream error, block on the pipe, or never end.
  io::check_regular_file(path, "sentencepiece model");
  char err[1024] = {0};
  void* handle = nullptr;
  if (a.load(path.c_str(), &handle, err, sizeof err) != 0) {
    throw Error(std::string("cannot load sentencepiece model: ") + err)
        .at(path)
        .hint("is it a sentencepiece .model file?");
  }
  std::shared_ptr<SentencePieceModel> m(new SentencePieceModel());
  m->handle_ = handle;
  m->path_ = path;
  return m;
}

SentencePieceModel::~SentencePieceModel() {
  if (handle_ != nullptr) api().free_model(handle_);
}

std::vector<int> SentencePieceModel::encode(std::string_view text) const {
  char err[1024] = {0};
  int* ids = nullptr;
  size_t n = 0;
  if (api().encode(handle_, text.data(), text.size(), &ids, &n, err, sizeof err) != 0)
    throw Error(std::string("sentencepiece encode failed: ") + err).at(path_);
  std::vector<int> out(ids, ids + n);
  api().release(ids);
  return out;
}

std::string SentencePieceModel::decode(const std::vector<int>& ids) const {
  const int size = piece_size();
  for (int id : ids) {
    if (id < 0 || id >= size)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(size) + ")")
          .at(path_);
  }
  char err[1024] = {0};
  char* text = nullptr;
  size_t len = 0;
  if (api().decode(handle_, ids.data(), ids.size(), &text, &len, err, sizeof err) != 0)
    throw Error(std::string("sentencepiece decode failed: ") + err).at(path_);
  std::string out(text, len);
  api().release(text);
  return out;
}

int SentencePieceModel::piece_size() const { return api().piece_size(handle_); }

std::string SentencePieceModel::id_to_piece(int id) const {
  char* piece = nullptr;
  size_t len = 0;
  if (api().id_to_piece(handle_, id, &piece, &len) != 0)
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(piece_size()) +
                ")")
        .at(path_);
  std::string out(piece, len);
  api().release(piece);
  return out;
}

int SentencePieceModel::piece_to_id(std::string_view piece) const {
  return api().piece_to_id(handle_, piece.data(), piece.size());
}
int SentencePieceModel::unk_id() const { return api().special_id(handle_, 0); }
int SentencePieceModel::bos_id() const { return api().special_id(handle_, 1); }
int SentencePieceModel::eos_id() const { return api().special_id(handle_, 2); }
int SentencePieceModel::pad_id() const { return api().special_id(handle_, 3); }
bool SentencePieceModel::is_control(int id) const { return api().is_control(handle_, id) != 0; }
bool SentencePieceModel::is_byte(int id) const { return api().is_byte(handle_, id) != 0; }

void train_sentencepiece(const std::string& args) {
  char err[2048] = {0};
  if (api().train(args.c_str(), err, sizeof err) != 0) {
    throw Error(std::string("sentencepiece training failed: ") + err).hint("check the trainer flags: " + args);
  }
}

}  // namespace selfrl::tokenizer
