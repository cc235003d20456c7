# flovyn_embed_migrations(<target> <component> <c++ symbol> <sql files...>)
# Compiles SQL files into the binary as a std::vector<flovyn::migrate::Migration>
# returned by `<symbol>()`; nothing is read from disk at run time.
function(flovyn_embed_migrations target component symbol)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${symbol}.cc)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DCOMPONENT=${component} -DSYMBOL=${symbol}
            "-DFILES=${ARGN}" -P ${PROJECT_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    DEPENDS ${ARGN} ${PROJECT_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    COMMENT "Embedding ${component} migrations"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()

function(flovyn_target_defaults target)
  target_compile_options(${target} PRIVATE ${FLOVYN_WARNINGS})
endfunction()

# flovyn_embed_assets(<target> <c++ symbol> <base dir> <files...>)
# Compiles static files into the binary: `<symbol>()` returns a std::map from the path under
# <base dir> ("app.css") to {content type, bytes}.
function(flovyn_embed_assets target symbol base)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${symbol}.cc)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSYMBOL=${symbol} -DBASE=${base}
            "-DFILES=${ARGN}" -P ${PROJECT_SOURCE_DIR}/cmake/EmbedAssets.cmake
    DEPENDS ${ARGN} ${PROJECT_SOURCE_DIR}/cmake/EmbedAssets.cmake
    COMMENT "Embedding static assets"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()
