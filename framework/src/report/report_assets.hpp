#pragma once
// The HTML report's stylesheet and scripts: report/assets/*.css and *.js, embedded at build time
// (cmake/embed_assets.cmake), so the page needs no file beside the runner but the chart bundles.
namespace difflab {

extern const char* const kReportStyle;         // assets/report.css
extern const char* const kReportErrorCatcher;  // assets/error_catcher.js, runs first on the page
extern const char* const kReportScript;        // assets/report.js: sorting, charts, test marks

}  // namespace difflab
