# cmake -DNPM=npm -DOUT=dir -DPACKAGES="vega@5.33.1;...;umap-js@1.4.0" -P FetchChartBundles.cmake
# Puts each package's browser bundle, build/<name>.min.js (vega's packages) or lib/<name>.min.js
# (umap-js), as OUT/<name>.min.js (and its LICENSE) via `npm pack`. Never fails the build:
# without the registry it warns once and leaves OUT without the bundles it could not fetch (list
# umap-js last: without it, charts still work); delete OUT/unavailable.txt (or OUT) to try again.
set(stamp ${OUT}/packages.txt)
if(EXISTS ${stamp})
  file(READ ${stamp} have)
  if(have STREQUAL "${PACKAGES}")
    return()
  endif()
endif()
if(EXISTS ${OUT}/unavailable.txt)
  file(READ ${OUT}/unavailable.txt tried)
  if(tried STREQUAL "${PACKAGES}")
    return()
  endif()
endif()
set(work ${OUT}/.fetch)
file(REMOVE_RECURSE ${work})
file(MAKE_DIRECTORY ${work})
foreach(package IN LISTS PACKAGES)
  string(REGEX REPLACE "@[^@]*$" "" name "${package}")
  execute_process(
    COMMAND ${NPM} pack ${package} --silent --fetch-retries=1 --fetch-timeout=30000
            --cache ${work}/npm-cache
    WORKING_DIRECTORY ${work} RESULT_VARIABLE failed OUTPUT_VARIABLE tarball
    ERROR_VARIABLE error TIMEOUT 180)
  string(STRIP "${tarball}" tarball)
  if(failed OR NOT EXISTS ${work}/${tarball})
    message(WARNING "difflab: could not fetch ${package} with npm (${failed}): ${error}\n"
                    "HTML reports will say charts (or the UMAP) are unavailable.")
    file(WRITE ${OUT}/unavailable.txt "${PACKAGES}")
    file(REMOVE_RECURSE ${work})
    return()
  endif()
  file(MAKE_DIRECTORY ${work}/${name})
  execute_process(COMMAND ${CMAKE_COMMAND} -E tar xzf ${work}/${tarball}
                  WORKING_DIRECTORY ${work}/${name} RESULT_VARIABLE failed)
  set(bundle "")
  foreach(folder build lib)
    if(NOT failed AND NOT bundle AND EXISTS ${work}/${name}/package/${folder}/${name}.min.js)
      set(bundle ${work}/${name}/package/${folder}/${name}.min.js)
    endif()
  endforeach()
  if(NOT bundle)
    message(WARNING "difflab: ${tarball} holds no build/ or lib/${name}.min.js; "
                    "HTML reports will say it is unavailable")
    file(WRITE ${OUT}/unavailable.txt "${PACKAGES}")
    file(REMOVE_RECURSE ${work})
    return()
  endif()
  file(RENAME ${bundle} ${OUT}/${name}.min.js)
  if(EXISTS ${work}/${name}/package/LICENSE)
    file(RENAME ${work}/${name}/package/LICENSE ${OUT}/${name}.LICENSE)
  endif()
endforeach()
file(REMOVE_RECURSE ${work})
file(REMOVE ${OUT}/unavailable.txt)
file(WRITE ${stamp} "${PACKAGES}")
message(STATUS "difflab: chart bundles ${PACKAGES} in ${OUT}")
