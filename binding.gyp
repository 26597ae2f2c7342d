{
  # scriptorium's SQLite extension (native/scriptorium_sqlite.c), compiled against the SQLite headers
  # that better-sqlite3 ships, and loaded with db.loadExtension().
  'targets': [
    {
      'target_name': 'scriptorium_sqlite',
      'type': 'loadable_module',
      'product_extension': 'node',
      'sources': ['native/scriptorium_sqlite.c'],
      'include_dirs': ['native', '<(module_root_dir)/node_modules/better-sqlite3/deps/sqlite3'],
      'cflags': ['-O2', '-Wall', '-Wno-unused-parameter'],
      'cflags!': ['-fno-exceptions'],
      'xcode_settings': { 'OTHER_CFLAGS': ['-O2'] },
    },
  ],
}
