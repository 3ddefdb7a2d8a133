// The selfrl_spm module: a C shim over libsentencepiece (see spm_shim.h for why it exists).
#include "spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#define SPM_EXPORT extern "C" __attribute__((visibility("default")))

namespace {
int fail(const std::string& what, char* err, size_t errlen) {
  if (err != nullptr && errlen > 0) {
    std::strncpy(err, what.c_str(), errlen - 1);
    err[errlen - 1] = '\0';
  }
  return 1;
}
sentencepiece::SentencePieceProcessor* sp(void* m) { return static_cast<sentencepiece::SentencePieceProcessor*>(m); }
}  // namespace

SPM_EXPORT int selfrl_spm_load(const char* path, void** model, char* err, size_t errlen) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  const auto status = p->Load(path);
  if (!status.ok()) {
    delete p;
    return fail(status.ToString(), err, errlen);
  }
  *model = p;
  return 0;
}

SPM_EXPORT void selfrl_spm_free(void* model) { delete sp(model); }

SPM_EXPORT int selfrl_spm_encode(void* model, const char* text, size_t len, int** ids, size_t* n, char* err,
                                 size_t errlen) {
  std::vector<int> out;
  const auto status = sp(model)->Encode(std::string(text, len), &out);
  if (!status.ok()) return fail(status.ToString(), err, errlen);
  *n = out.size();
  *ids = static_cast<int*>(std::malloc(sizeof(int) * (out.empty() ? 1 : out.size())));
  if (!out.empty()) std::memcpy(*ids, out.data(), sizeof(int) * out.size());
  return 0;
}

SPM_EXPORT int selfrl_spm_decode(void* model, const int* ids, size_t n, char** text, size_t* len, char* err,
                                 size_t errlen) {
  std::string out;
  const auto status = sp(model)->Decode(std::vector<int>(ids, ids + n), &out);
  if (!status.ok()) return fail(status.ToString(), err, errlen);
  *len = out.size();
  *text = static_cast<char*>(std::malloc(out.size() + 1));
  std::memcpy(*text, out.data(), out.size());
  (*text)[out.size()] = '\0';
  return 0;
}

SPM_EXPORT void selfrl_spm_release(void* buffer) { std::free(buffer); }
SPM_EXPORT int selfrl_spm_piece_size(void* model) { return sp(model)->GetPieceSize(); }

SPM_EXPORT int selfrl_spm_id_to_piece(void* model, int id, char** piece, size_t* len) {
  if (id < 0 || id >= sp(model)->GetPieceSize()) return 1;
  const std::string& s = sp(model)->IdToPiece(id);
  *len = s.size();
  *piece = static_cast<char*>(std::malloc(s.size() + 1));
  std::memcpy(*piece, s.data(), s.size());
  (*piece)[s.size()] = '\0';
  return 0;
}

SPM_EXPORT int selfrl_spm_piece_to_id(void* model, const char* piece, size_t len) {
  return sp(model)->PieceToId(std::string(piece, len));
}

SPM_EXPORT int selfrl_spm_special_id(void* model, int kind) {
  switch (kind) {
    case 0:
      return sp(model)->unk_id();
    case 1:
      return sp(model)->bos_id();
    case 2:
      return sp(model)->eos_id();
    case 3:
      return sp(model)->pad_id();
    default:
      return -1;
  }
}

SPM_EXPORT int selfrl_spm_is_control(void* model, int id) {
  return sp(model)->IsControl(id) || sp(model)->IsUnknown(id) ? 1 : 0;
}
SPM_EXPORT int selfrl_spm_is_byte(void* model, int id) { return sp(model)->IsByte(id) ? 1 : 0; }

SPM_EXPORT int selfrl_spm_train(const char* args, char* err, size_t errlen) {
  // sentencepiece logs "Running command: ..." to stderr before it reads --minloglevel; its
  // errors come back in the status, so its stderr is muted for the call.
  std::fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  const int null = open("/dev/null", O_WRONLY);
  if (saved >= 0 && null >= 0) dup2(null, STDERR_FILENO);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  std::fflush(stderr);
  if (saved >= 0) {
    dup2(saved, STDERR_FILENO);
    close(saved);
  }
  if (null >= 0) close(null);
  if (!status.ok()) return fail(status.ToString(), err, errlen);
  return 0;
}
