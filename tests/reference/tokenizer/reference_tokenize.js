// Reference token ids from transformers.js' tokenizers (@lenml/tokenizers, a dependency-free
// fork of @huggingface/transformers' tokenizers.js) and chat prompts from @huggingface/jinja.
// Usage: node reference_tokenize.js TOKENIZER_DIR IN.jsonl OUT.jsonl
//   IN lines:  {"text": "..."}
//   OUT lines: {"ids": [...], "ids_special": [...], "decoded": "...",
//               "chat_prompt": "..." | null, "chat_ids": [...] | null}
// Modules are looked up in $SELFRL_NPM_DIR/node_modules (default .cache/npm at the repo root),
// where scripts/fetch_test_fixtures.sh installs them.
"use strict";
const fs = require("fs");
const path = require("path");

const npmDir = process.env.SELFRL_NPM_DIR || path.join(__dirname, "../../../.cache/npm");
const req = (name) => require(path.join(npmDir, "node_modules", name));
const { TokenizerLoader } = req("@lenml/tokenizers");
const { Template } = req("@huggingface/jinja");

const [dir, inPath, outPath] = process.argv.slice(2);
if (!dir || !inPath || !outPath) {
  console.error("usage: node reference_tokenize.js TOKENIZER_DIR IN.jsonl OUT.jsonl");
  process.exit(2);
}
const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });

const tokenString = (t) => (t == null ? "" : typeof t === "string" ? t : t.content);
let template = null;
if (typeof tokenizerConfig.chat_template === "string") {
  template = new Template(tokenizerConfig.chat_template);
}

const out = [];
for (const line of fs.readFileSync(inPath, "utf8").split("\n")) {
  if (line.trim() === "") continue;
  const { text } = JSON.parse(line);
  const ids = Array.from(tok.encode(text, { add_special_tokens: false }));
  const idsSpecial = Array.from(tok.encode(text, { add_special_tokens: true }));
  // transformers.js refuses to decode an empty list; HF returns "".
  const decoded = ids.length ? tok.decode(ids, { skip_special_tokens: false }) : "";
  let chatPrompt = null, chatIds = null;
  if (template) {
    // HF apply_chat_template's variables: messages, add_generation_prompt and the special tokens.
    chatPrompt = template.render({
      messages: [{ role: "user", content: text }],
      add_generation_prompt: true,
      bos_token: tokenString(tokenizerConfig.bos_token),
      eos_token: tokenString(tokenizerConfig.eos_token),
      pad_token: tokenString(tokenizerConfig.pad_token),
      unk_token: tokenString(tokenizerConfig.unk_token),
    });
    chatIds = Array.from(tok.encode(chatPrompt, { add_special_tokens: false }));
  }
  out.push(JSON.stringify({ ids, ids_special: idsSpecial, decoded, chat_prompt: chatPrompt, chat_ids: chatIds }));
}
fs.writeFileSync(outPath, out.join("\n") + "\n");
