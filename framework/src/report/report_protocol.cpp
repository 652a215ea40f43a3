// Protocols of metric values: their canonical text, the names that set apart a split column's
// parts, and the difference a --compare refusal states.
#include "report/report_protocol.hpp"

#include <set>

#include <nlohmann/json.hpp>

namespace difflab {
namespace {

using SortedJson = nlohmann::json;  // std::map objects: keys sorted, so dump() is canonical

SortedJson parse_protocol(const std::string& text) {
  auto object = SortedJson::parse(text, nullptr, false);
  return object.is_object() ? object : SortedJson::object();
}

// A protocol value as headers and reasons show it: strings without their quotes.
std::string value_text(const SortedJson& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

}  // namespace

std::string canonical_protocol(const std::string& protocol_json) {
  if (protocol_json.empty() || protocol_json == "{}") return "{}";  // most values: no parse
  auto object = SortedJson::parse(protocol_json, nullptr, false);
  if (object.is_discarded()) return SortedJson{{"protocol", protocol_json}}.dump();
  if (!object.is_object()) return SortedJson{{"protocol", object}}.dump();
  return object.dump();
}

std::string protocol_without(const std::string& canonical, const std::string& key) {
  if (canonical == "{}") return canonical;
  auto object = parse_protocol(canonical);
  object.erase(key);
  return object.dump();
}

std::vector<std::string> protocol_labels(const std::vector<std::string>& protocols) {
  if (protocols.size() < 2) return std::vector<std::string>(protocols.size());
  std::vector<SortedJson> objects, recorded;
  std::set<std::string> keys;
  for (const auto& p : protocols) {
    objects.push_back(parse_protocol(p));
    if (objects.back().empty()) continue;  // named "{unrecorded}" whatever the others hold
    recorded.push_back(objects.back());
    for (const auto& item : recorded.back().items()) keys.insert(item.key());
  }
  // The keys whose value (or absence) is not the same in every recorded protocol.
  std::vector<std::string> differing;
  for (const auto& key : keys) {
    const auto first = recorded[0].find(key);
    for (const auto& object : recorded) {
      const auto it = object.find(key);
      const bool same = (it == object.end()) == (first == recorded[0].end()) &&
                        (it == object.end() || *it == *first);
      if (!same) {
        differing.push_back(key);
        break;
      }
    }
  }
  std::vector<std::string> labels;
  for (const auto& object : objects) {
    if (object.empty()) {
      labels.push_back("{unrecorded}");
    } else if (differing.empty()) {
      labels.push_back("{recorded}");  // the one recorded protocol, beside values without one
    } else {
      std::string label;
      for (const auto& key : differing) {
        const auto it = object.find(key);
        label +=
            (label.empty() ? "" : ",") + key + "=" + (it == object.end() ? "-" : value_text(*it));
      }
      labels.push_back("{" + label + "}");
    }
  }
  return labels;
}

std::string protocol_difference(const std::string& a, const std::string& b) {
  const auto x = parse_protocol(a), y = parse_protocol(b);
  auto listed = [](const SortedJson& object) {
    std::string text;
    for (const auto& item : object.items())
      text += (text.empty() ? "" : ", ") + item.key() + " " + value_text(item.value());
    return text;
  };
  if (x.empty() != y.empty()) {
    return x.empty() ? "not recorded vs " + listed(y) : listed(x) + " vs not recorded";
  }
  std::set<std::string> keys;
  for (const auto& item : x.items()) keys.insert(item.key());
  for (const auto& item : y.items()) keys.insert(item.key());
  std::string text;
  for (const auto& key : keys) {
    const auto i = x.find(key), j = y.find(key);
    const bool in_x = i != x.end(), in_y = j != y.end();
    if (in_x && in_y && *i == *j) continue;
    text += (text.empty() ? "" : ", ") + key + " " + (in_x ? value_text(*i) : "-") + " vs " +
            (in_y ? value_text(*j) : "-");
  }
  return text;
}

}  // namespace difflab
