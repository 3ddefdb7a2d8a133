// sentencepiece models (.model files) and in-process training, through libsentencepiece.
//
// libsentencepiece is reached only through the selfrl_spm module, loaded on first use with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND): Debian's libsentencepiece carries its own protobuf-lite,
// which crashes at start-up when it shares a symbol namespace with LibTorch's libprotobuf.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace selfrl::tokenizer {

class SentencePieceModel {
 public:
  // Loads a sentencepiece .model file. Throws selfrl::Error naming the file on failure.
  static std::shared_ptr<SentencePieceModel> load(const std::string& path);
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  std::vector<int> encode(std::string_view text) const;
  std::string decode(const std::vector<int>& ids) const;
  int piece_size() const;
  std::string id_to_piece(int id) const;          // throws for ids outside [0, piece_size)
  int piece_to_id(std::string_view piece) const;  // unk_id() when absent
  int unk_id() const;
  int bos_id() const;  // -1 when the model has none
  int eos_id() const;
  int pad_id() const;
  bool is_control(int id) const;  // control or unknown piece
  bool is_byte(int id) const;     // <0xNN> byte-fallback piece
  const std::string& path() const { return path_; }

 private:
  SentencePieceModel() = default;
  void* handle_ = nullptr;
  std::string path_;
};

// Trains a sentencepiece model in-process. `args` uses spm_train's flag syntax, e.g.
// "--input=corpus.txt --model_prefix=out/tok --vocab_size=256 --model_type=bpe".
// Writes <model_prefix>.model and .vocab. Throws selfrl::Error with sentencepiece's message.
void train_sentencepiece(const std::string& args);

// Path of the selfrl_spm module this process loads (next to libselfrl.so).
std::string sentencepiece_module_path();

}  // namespace selfrl::tokenizer
