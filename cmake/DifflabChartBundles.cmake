# The HTML report's charts: the Vega, Vega-Lite and vega-embed bundles from the npm registry,
# and umap-js for its distribution view's UMAP, fetched into the build tree when building (never
# committed) and installed beside the runner. Without npm, or offline, the build still succeeds
# and reports say charts (or the UMAP) are unavailable.
set(DIFFLAB_CHART_PACKAGES "vega@5.33.1;vega-lite@5.23.0;vega-embed@6.29.0" CACHE STRING
    "npm packages (pinned) whose build/*.min.js the HTML report inlines")
# A variable of its own, not a fourth entry above: a build folder keeps the cached value of
# DIFFLAB_CHART_PACKAGES, so an entry added there would never reach existing builds.
set(DIFFLAB_UMAP_PACKAGE "umap-js@1.4.0" CACHE STRING
    "npm package (pinned) whose lib/umap-js.min.js the HTML report's distribution view inlines")
option(DIFFLAB_FETCH_CHARTS "Fetch the HTML report's chart bundles with npm when building" ON)
set(DIFFLAB_CHART_DIR ${CMAKE_BINARY_DIR}/chart-bundles)
set(DIFFLAB_INSTALL_CHART_DIR ${CMAKE_INSTALL_DATADIR}/difflab/charts)
file(MAKE_DIRECTORY ${DIFFLAB_CHART_DIR})

find_program(NPM_PROGRAM npm)
if(DIFFLAB_FETCH_CHARTS AND NPM_PROGRAM)
  # Runs on every build but returns at once when the pinned bundles are already there.
  add_custom_target(chart_bundles ALL
    COMMAND ${CMAKE_COMMAND} -DNPM=${NPM_PROGRAM} -DOUT=${DIFFLAB_CHART_DIR}
            "-DPACKAGES=${DIFFLAB_CHART_PACKAGES};${DIFFLAB_UMAP_PACKAGE}"
            -P ${CMAKE_CURRENT_LIST_DIR}/FetchChartBundles.cmake
    COMMENT "Chart bundles for HTML reports (npm: ${DIFFLAB_CHART_PACKAGES};${DIFFLAB_UMAP_PACKAGE})"
    VERBATIM)
else()
  message(STATUS "difflab: npm not found (or DIFFLAB_FETCH_CHARTS=OFF): HTML reports will say "
                 "charts are unavailable")
endif()
install(DIRECTORY ${DIFFLAB_CHART_DIR}/ DESTINATION ${DIFFLAB_INSTALL_CHART_DIR}
        FILES_MATCHING PATTERN "*.js" PATTERN "*LICENSE*")
