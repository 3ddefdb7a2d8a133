// Where a run's numbers go: metrics.jsonl (one JSON object per step / iteration, flushed per
// line so that a crash loses nothing already logged) and TensorBoard event files that
// `tensorboard --logdir RUN_DIR` reads. Only rank 0 writes (the caller decides).
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>

namespace selfrl::metrics {

using Scalars = std::map<std::string, double>;

// Writes TensorBoard's tfevents format: TFRecords (length, masked CRC-32C, payload, masked
// CRC-32C) of Event protos holding scalar summaries, encoded by hand (no protobuf dependency).
class TensorBoardWriter {
 public:
  // Creates RUN_DIR/events.out.tfevents.<unix time>.<host>.<pid>.
  explicit TensorBoardWriter(const std::string& run_dir);
  ~TensorBoardWriter();
  void add_scalars(int64_t step, const Scalars& scalars, double wall_time = -1);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& payload);
  std::string path_;
  std::ofstream out_;
};

// metrics.jsonl + TensorBoard, one call per step.
class MetricsLogger {
 public:
  // `tensorboard` false → only metrics.jsonl. Appends to an existing metrics.jsonl (resume).
  MetricsLogger(const std::string& run_dir, bool tensorboard = true);
  // Writes {"step": step, "kind": kind, ...scalars}. Non-finite values are written as null.
  void log(int64_t step, const Scalars& scalars, const std::string& kind = "train");
  const std::string& jsonl_path() const { return jsonl_path_; }

 private:
  std::string jsonl_path_;
  std::ofstream jsonl_;
  std::unique_ptr<TensorBoardWriter> tb_;
};

// CRC-32C (Castagnoli), and TFRecord's masking of it.
uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);

}  // namespace selfrl::metrics
