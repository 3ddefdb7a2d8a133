// Chat templates: the Jinja subset that Hugging Face chat templates use (Qwen2.5/Qwen3,
// Llama-2/3/3.1, ChatML), rendered as transformers' apply_chat_template does (jinja2 with
// trim_blocks=True, lstrip_blocks=True), and built-in formats for models without a template.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace selfrl::tokenizer {

struct ChatMessage {
  std::string role;  // system, user, assistant, tool
  std::string content;
};

struct ChatTemplateOptions {
  bool add_generation_prompt = true;
  std::string bos_token, eos_token, pad_token, unk_token;
  // Extra string variables (e.g. "date_string" for Llama-3.1, "enable_thinking" as "false").
  std::map<std::string, std::string> string_vars;
  std::map<std::string, bool> bool_vars;
  // strftime_now() returns this date when set ("26 Jul 2024"), else the current date.
  std::string fixed_date;
};

// A parsed template; parse once, render many times. Errors (syntax, unsupported features,
// raise_exception) are selfrl::Error naming the construct and "template line N".
class ChatTemplate {
 public:
  explicit ChatTemplate(const std::string& source, const std::string& name = "chat_template");
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  std::string render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options = {}) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Template text of a built-in format: "chatml", "llama3", "plain". Throws for other names.
std::string builtin_chat_template(const std::string& name);

}  // namespace selfrl::tokenizer
