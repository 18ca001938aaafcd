//! Error text for people: an error and its sources on one line.

/// `err: source: source…`, skipping a source whose text the line already
/// holds. TLS, connection and kubeconfig errors keep the useful part in a
/// source, so printing only the outer error says too little.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
