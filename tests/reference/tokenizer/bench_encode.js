// transformers.js side of benchmarks/tokenizer/tokenizer_encode.cpp: the same corpus
// (corpus.jsonl repeated to MB megabytes), encoded line by line without special tokens.
// Usage: node bench_encode.js TOKENIZERS_DIR CORPUS.jsonl [MB=8] [RUNS=5]
"use strict";
const fs = require("fs");
const path = require("path");
const npmDir = process.env.SELFRL_NPM_DIR || path.join(__dirname, "../../../.cache/npm");
const { TokenizerLoader } = require(path.join(npmDir, "node_modules", "@lenml/tokenizers"));

const [dir, corpusPath, mbArg, runsArg] = process.argv.slice(2);
const mb = Number(mbArg || 8), runs = Number(runsArg || 5);
const base = fs.readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l).text);
const texts = [];
let bytes = 0;
while (bytes < mb * 1e6) {
  for (const t of base) {
    texts.push(t);
    bytes += Buffer.byteLength(t, "utf8");
  }
}
for (const name of ["qwen3", "llama3", "llama2"]) {
  const t0 = process.hrtime.bigint();
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, name, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, name, "tokenizer_config.json"), "utf8"));
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
  const secs = [];
  let tokens = 0;
  for (let r = 0; r < runs; ++r) {
    const s = process.hrtime.bigint();
    let n = 0;
    for (const t of texts) n += tok.encode(t, { add_special_tokens: false }).length;
    secs.push(Number(process.hrtime.bigint() - s) / 1e9);
    tokens = n;
  }
  const sorted = [...secs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(JSON.stringify({ tokenizer: name, impl: "transformers.js (@lenml/tokenizers 3.7.2)", bytes, tokens,
    load_s: loadS, runs_s: secs, median_s: median, median_mb_s: bytes / 1e6 / median }));
}
