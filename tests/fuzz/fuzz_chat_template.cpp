// Jinja chat templates: ChatTemplate parses the input and renders a fixed small conversation,
// with and without the generation prompt, as apply_chat_template would.
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "selfrl/core/error.h"
#include "selfrl/tokenizer/chat_template.h"

namespace {

void fuzz_one(const uint8_t* data, size_t size) {
  using namespace selfrl::tokenizer;
  const std::string source(reinterpret_cast<const char*>(data), size);
  static const std::vector<ChatMessage> kConversation = {
      {"system", "You are a helpful assistant."},
      {"user", "What is 2 + 3?"},
      {"assistant", "<think>2 + 3 = 5</think>The answer is 5."},
      {"user", "And {{ 2 * 3 }}? 'quotes' \"too\" \n\t ünïcödé"},
  };
  ChatTemplateOptions options;
  options.bos_token = "<s>";
  options.eos_token = "</s>";
  options.pad_token = "<pad>";
  options.unk_token = "<unk>";
  options.string_vars = {{"date_string", "26 Jul 2024"}};
  options.bool_vars = {{"enable_thinking", false}, {"tools_in_user_message", true}};
  options.fixed_date = "26 Jul 2024";
  try {
    const ChatTemplate tmpl(source, "fuzz.jinja");
    for (const bool prompt : {true, false}) {
      options.add_generation_prompt = prompt;
      try {
        (void)tmpl.render(kConversation, options);
      } catch (const selfrl::Error& e) {
        selfrl::fuzz::note(e.what());
      }
    }
    (void)tmpl.render({}, options);
  } catch (const selfrl::Error& e) {
    selfrl::fuzz::note(e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return selfrl::fuzz::run(fuzz_one, data, size);
}
