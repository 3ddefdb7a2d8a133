// Reference chat prompts from @huggingface/jinja for multi-turn conversations.
// Usage: node reference_chat.js TOKENIZER_DIR CONVERSATIONS.json OUT.json
//   CONVERSATIONS: [{"messages": [{"role", "content"}...], "add_generation_prompt": bool,
//                    "enable_thinking"?: bool}]
//   OUT: [prompt string, ...]
"use strict";
const fs = require("fs");
const path = require("path");
const npmDir = process.env.SELFRL_NPM_DIR || path.join(__dirname, "../../../.cache/npm");
const { Template } = require(path.join(npmDir, "node_modules", "@huggingface/jinja"));

const [dir, convPath, outPath] = process.argv.slice(2);
const config = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
const tokenString = (t) => (t == null ? "" : typeof t === "string" ? t : t.content);
const template = new Template(config.chat_template);
const out = JSON.parse(fs.readFileSync(convPath, "utf8")).map((c) => {
  const vars = {
    messages: c.messages,
    add_generation_prompt: c.add_generation_prompt,
    bos_token: tokenString(config.bos_token),
    eos_token: tokenString(config.eos_token),
  };
  if ("enable_thinking" in c) vars.enable_thinking = c.enable_thinking;
  return template.render(vars);
});
fs.writeFileSync(outPath, JSON.stringify(out));
