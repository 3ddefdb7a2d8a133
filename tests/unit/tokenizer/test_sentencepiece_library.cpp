// sentencepiece through the isolated module: train in-process, load, encode/decode round trip.
#include "selfrl/tokenizer/sentencepiece_library.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_util.h"

TEST(SentencePieceLibrary, TrainsLoadsAndRoundTrips) {
  SELFRL_SKIP_WITHOUT_SENTENCEPIECE();
  selfrl::test::TempDir dir;
  {
    std::ofstream corpus(dir.file("corpus.txt"));
    for (int a = 0; a < 60; ++a)
      corpus << "what is " << a * 37 % 1000 << " plus " << a * 91 % 1000 << " ? the answer is " << (a * 128) % 2000
             << "\n";
  }
  selfrl::tokenizer::train_sentencepiece("--input=" + dir.file("corpus.txt") + " --model_prefix=" + dir.file("tok") +
                                         " --vocab_size=48 --model_type=bpe --character_coverage=1.0 --minloglevel=2");
  const auto m = selfrl::tokenizer::SentencePieceModel::load(dir.file("tok.model"));
  EXPECT_EQ(m->piece_size(), 48);
  const std::string text = "what is 12 plus 30 ? the answer is 42";
  const auto ids = m->encode(text);
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(m->decode(ids), text);
  EXPECT_EQ(m->piece_to_id(m->id_to_piece(ids[0])), ids[0]);
  EXPECT_EQ(m->unk_id(), 0);
  EXPECT_SELFRL_ERROR(m->decode({100000}), "outside the vocabulary");
  EXPECT_SELFRL_ERROR(selfrl::tokenizer::SentencePieceModel::load(dir.file("corpus.txt")), "corpus.txt", "cannot load");
  EXPECT_SELFRL_ERROR(selfrl::tokenizer::train_sentencepiece("--input=/nonexistent --model_prefix=" + dir.file("x") +
                                                             " --vocab_size=10"),
                      "sentencepiece training failed");
}
