#pragma once
// A metric value's evaluation protocol (MetricRecord::protocol_json) as the report compares and
// names it: values whose protocols differ never share a column (report_protocol.cpp).
#include <string>
#include <vector>

namespace difflab {

/// protocol_json in one form, so that equal protocols compare equal as text: an object with its
/// keys sorted; "{}" for an empty one (not recorded); text that is not a JSON object is kept as
/// {"protocol": text}.
std::string canonical_protocol(const std::string& protocol_json);

/// The canonical protocol without `key` (the --by-nfe pivot leaves out "nfe", its columns).
std::string protocol_without(const std::string& canonical, const std::string& key);

/// The name of each of several distinct canonical protocols of one column, for its header: the
/// keys on which the recorded ones differ, "{samples=1000}" or "{reference=test,samples=500}", a
/// key that protocol lacks as "key=-"; "{unrecorded}" for "{}", and "{recorded}" for the one
/// recorded protocol beside it. One protocol: {""} (nothing to name).
std::vector<std::string> protocol_labels(const std::vector<std::string>& protocols);

/// What differs between two canonical protocols, for a one-line refusal: "samples 1000 vs 500",
/// "reference test vs train, samples 1000 vs 500"; a protocol not recorded ("{}") is said so:
/// "not recorded vs samples 1000".
std::string protocol_difference(const std::string& a, const std::string& b);

}  // namespace difflab
