// metrics.jsonl and TensorBoard event files (see selfrl/metrics/metrics.h).
#include "selfrl/metrics/metrics.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "selfrl/core/error.h"
#include "selfrl/core/logging.h"

namespace selfrl::metrics {
namespace {

const uint32_t* crc_table() {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  return table;
}

void put_varint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
}
void put_fixed64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_fixed32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_bytes(std::string& s, int field, const std::string& bytes) {
  put_varint(s, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(s, bytes.size());
  s += bytes;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
std::string event_header(double wall_time, int64_t step) {
  std::string e;
  uint64_t bits;
  std::memcpy(&bits, &wall_time, 8);
  put_varint(e, (1 << 3) | 1);
  put_fixed64(e, bits);
  put_varint(e, (2 << 3) | 0);
  put_varint(e, static_cast<uint64_t>(step));
  return e;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  const uint32_t* t = crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& run_dir) {
  std::filesystem::create_directories(run_dir);
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  path_ =
      (std::filesystem::path(run_dir) / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(now_seconds())) +
                                         "." + host + "." + std::to_string(::getpid())))
          .string();
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw Error("cannot create TensorBoard event file").at(path_);
  std::string e = event_header(now_seconds(), 0);
  put_bytes(e, 3, "brain.Event:2");
  write_record(e);
  flush();
}

TensorBoardWriter::~TensorBoardWriter() { flush(); }

void TensorBoardWriter::write_record(const std::string& payload) {
  std::string len;
  put_fixed64(len, payload.size());
  std::string rec = len;
  put_fixed32(rec, masked_crc32c(len.data(), len.size()));
  rec += payload;
  put_fixed32(rec, masked_crc32c(payload.data(), payload.size()));
  out_.write(rec.data(), static_cast<std::streamsize>(rec.size()));
}

void TensorBoardWriter::add_scalars(int64_t step, const Scalars& scalars, double wall_time) {
  // Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
  std::string summary;
  for (const auto& [tag, v] : scalars) {
    std::string value;
    put_bytes(value, 1, tag);
    const float f = static_cast<float>(v);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    put_varint(value, (2 << 3) | 5);
    put_fixed32(value, bits);
    put_bytes(summary, 1, value);
  }
  std::string e = event_header(wall_time >= 0 ? wall_time : now_seconds(), step);
  put_bytes(e, 5, summary);
  write_record(e);
}

void TensorBoardWriter::flush() { out_.flush(); }

MetricsLogger::MetricsLogger(const std::string& run_dir, bool tensorboard) {
  std::filesystem::create_directories(run_dir);
  jsonl_path_ = (std::filesystem::path(run_dir) / "metrics.jsonl").string();
  jsonl_.open(jsonl_path_, std::ios::app);
  if (!jsonl_) throw Error("cannot open metrics file for writing").at(jsonl_path_);
  if (tensorboard) tb_ = std::make_unique<TensorBoardWriter>(run_dir);
}

void MetricsLogger::log(int64_t step, const Scalars& scalars, const std::string& kind) {
  nlohmann::ordered_json j;
  j["step"] = step;
  j["kind"] = kind;
  for (const auto& [k, v] : scalars)
    j[k] = std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
  errno = 0;
  jsonl_ << j.dump() << "\n";
  jsonl_.flush();
  if (!jsonl_) {
    // Metrics are not worth the run: say so and go on (checkpoint writes, by contrast, stop it).
    SELFRL_WARN(jsonl_path_ << ": write failed (" << (errno ? std::strerror(errno) : "stream error") << "); the "
                            << kind << " metrics of step " << step << " are lost, training goes on");
    jsonl_.clear();
  }
  if (tb_) {
    Scalars prefixed;
    for (const auto& [k, v] : scalars) prefixed[kind + "/" + k] = v;
    tb_->add_scalars(step, prefixed);
    tb_->flush();
  }
}

}  // namespace selfrl::metrics
