// ProgressEvent: its factories, and the one-line JSON form (`@difflab-progress {...}`) in which a
// child process reports its events to the parent's SweepProgress.
#include <nlohmann/json.hpp>

#include "progress/progress.hpp"

namespace difflab {
namespace {

constexpr const char* kLinePrefix = "@difflab-progress ";

const char* event_name(ProgressEvent::Kind kind) {
  switch (kind) {
    case ProgressEvent::Kind::start: return "start";
    case ProgressEvent::Kind::step: return "step";
    case ProgressEvent::Kind::eval: return "eval";
    case ProgressEvent::Kind::eval_done: return "eval_done";
    case ProgressEvent::Kind::end: return "end";
  }
  return "";
}

}  // namespace

ProgressEvent ProgressEvent::started(std::int64_t index, std::string label,
                                     std::int64_t total_steps, std::int64_t epochs,
                                     std::int64_t resumed_step) {
  ProgressEvent e;
  e.kind = Kind::start;
  e.index = index;
  e.label = std::move(label);
  e.total_steps = total_steps;
  e.epochs = epochs;
  e.step = resumed_step;
  return e;
}

ProgressEvent ProgressEvent::stepped(std::int64_t index, std::int64_t epoch, std::int64_t step,
                                     double loss) {
  ProgressEvent e;
  e.kind = Kind::step;
  e.index = index;
  e.epoch = epoch;
  e.step = step;
  e.loss = loss;
  return e;
}

ProgressEvent ProgressEvent::evaluating(std::int64_t index, std::int64_t epoch) {
  ProgressEvent e;
  e.kind = Kind::eval;
  e.index = index;
  e.epoch = epoch;
  return e;
}

ProgressEvent ProgressEvent::evaluated(std::int64_t index, std::int64_t epoch) {
  auto e = evaluating(index, epoch);
  e.kind = Kind::eval_done;
  return e;
}

ProgressEvent ProgressEvent::finished(std::int64_t index, std::string status, std::string reason) {
  ProgressEvent e;
  e.kind = Kind::end;
  e.index = index;
  e.status = std::move(status);
  e.reason = std::move(reason);
  return e;
}

std::string to_progress_line(const ProgressEvent& event) {
  nlohmann::ordered_json j;
  j["event"] = event_name(event.kind);
  j["index"] = event.index;
  switch (event.kind) {
    case ProgressEvent::Kind::start:
      j["label"] = event.label;
      j["steps"] = event.total_steps;
      j["epochs"] = event.epochs;
      if (event.step > 0) j["step"] = event.step;
      break;
    case ProgressEvent::Kind::step:
      j["epoch"] = event.epoch;
      j["step"] = event.step;
      j["loss"] = event.loss;  // NaN and infinities become null
      break;
    case ProgressEvent::Kind::eval:
    case ProgressEvent::Kind::eval_done: j["epoch"] = event.epoch; break;
    case ProgressEvent::Kind::end:
      j["status"] = event.status;
      if (!event.reason.empty()) j["reason"] = event.reason;
      break;
  }
  // Invalid UTF-8 in a reason (a plugin's message) is replaced rather than thrown about.
  return kLinePrefix + j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::optional<ProgressEvent> parse_progress_line(const std::string& line) {
  const std::string prefix = kLinePrefix;
  if (line.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const auto j = nlohmann::json::parse(line.begin() + static_cast<std::ptrdiff_t>(prefix.size()),
                                       line.end(), nullptr, false);
  if (!j.is_object() || !j.contains("event") || !j["event"].is_string() || !j.contains("index") ||
      !j["index"].is_number_integer()) {
    return std::nullopt;
  }
  try {
    ProgressEvent e;
    const auto name = j["event"].get<std::string>();
    if (name == "start") {
      e.kind = ProgressEvent::Kind::start;
    } else if (name == "step") {
      e.kind = ProgressEvent::Kind::step;
    } else if (name == "eval") {
      e.kind = ProgressEvent::Kind::eval;
    } else if (name == "eval_done") {
      e.kind = ProgressEvent::Kind::eval_done;
    } else if (name == "end") {
      e.kind = ProgressEvent::Kind::end;
    } else {
      return std::nullopt;
    }
    e.index = j["index"].get<std::int64_t>();
    e.label = j.value("label", "");
    e.total_steps = j.value("steps", std::int64_t{0});
    e.epochs = j.value("epochs", std::int64_t{0});
    e.epoch = j.value("epoch", std::int64_t{0});
    e.step = j.value("step", std::int64_t{0});
    const auto loss = j.find("loss");
    e.loss = loss == j.end() ? 0.0 : loss->is_number() ? loss->get<double>() : std::nan("");
    e.status = j.value("status", "");
    e.reason = j.value("reason", "");
    if (e.kind == ProgressEvent::Kind::end && e.status != "done" && e.status != "failed" &&
        e.status != "skipped") {
      return std::nullopt;
    }
    return e;
  } catch (const nlohmann::json::exception&) {  // a field of the wrong type
    return std::nullopt;
  }
}

}  // namespace difflab
