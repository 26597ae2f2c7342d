{
  # scriptorium's SQLite extension (native/scriptorium_sqlite.c), compiled against the SQLite headers
  # that better-sqlite3 ships, and loaded with db.loadExtension(). Its packer compresses with the zstd
  # that zstd-napi vendors: the static library zstd-napi built, or, without one, its sources compiled
  # here. native/deps.cjs finds both packages wherever npm installed them (nested or hoisted).
  'targets': [
    {
      'target_name': 'scriptorium_sqlite',
      'type': 'loadable_module',
      'product_extension': 'node',
      'sources': ['native/scriptorium_sqlite.c', '<!@(node native/deps.cjs sources)'],
      'include_dirs': ['native', '<!(node native/deps.cjs sqlite)', '<!(node native/deps.cjs include)'],
      'libraries': ['<!@(node native/deps.cjs library)'],
      'defines': ['XXH_NAMESPACE=ZSTD_', 'ZSTD_NO_TRACE', 'ZSTDLIB_VISIBLE=', 'ZSTDERRORLIB_VISIBLE='],
      'cflags': ['-O2', '-Wall', '-Wno-unused-parameter', '-fvisibility=hidden'],
      'cflags!': ['-fno-exceptions'],
      # Never unloaded: a packer's thread may outlive the connection that loaded the extension (SQLite
      # unloads an extension when the last connection that loaded it closes).
      'ldflags': ['-Wl,-z,nodelete'],
      'xcode_settings': { 'OTHER_CFLAGS': ['-O2'] },
    },
  ],
}
