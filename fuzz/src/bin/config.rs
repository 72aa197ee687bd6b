//! Node-directory files: `enlace.toml` (`config::parse_config`), the data-key
//! file (`sealing::KeyFile::parse`), and sealed values as read back from the
//! store (`DataKeys::open`). Whatever parses is rendered and must parse back
//! to the same value; a value sealed under the fixed keys opens to itself.

use enlace_node::{config::parse_config, sealing::KeyFile};

/// A key file with two data keys, so both versions are tried on open.
const KEYS: &str = "1:0101010101010101010101010101010101010101010101010101010101010101\n\
                    2:0202020202020202020202020202020202020202020202020202020202020202\n";

fn main() {
    let keys = KeyFile::parse(KEYS)
        .expect("the fixed key file parses")
        .data_keys();
    afl::fuzz!(|data: &[u8]| {
        // At rest: any bytes under any tree/key name either open or are refused.
        let _ = keys.open("cases", b"MEX-2026-0001", data.to_vec());
        let sealed = keys
            .seal("cases", b"k", data)
            .expect("sealing never fails under a valid key");
        assert_eq!(
            keys.open("cases", b"k", sealed.clone()).as_deref(),
            Ok(data)
        );
        assert!(keys.open("cases", b"other", sealed).is_err());

        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(config) = parse_config(text) {
            let rendered = toml::to_string(&config).expect("a Config renders");
            let again = parse_config(&rendered).expect("a rendered Config parses");
            assert_eq!(again, config);
            let _ = config.limits.request_timeout();
            let _ = config.matching.thresholds();
        }
        if let Ok(file) = KeyFile::parse(text) {
            let again = KeyFile::parse(&file.render()).expect("a rendered key file parses");
            assert!(again == file, "key file round trip");
            let _ = file.index_key();
            let _ = file.data_keys().current();
            let _ = file.rotated();
        }
    });
}
