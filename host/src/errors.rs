//! Errors as a person reads them, for conditions, Events, logs and the CLI: the error and its causes on one
//! line, with Kubernetes API refusals shown as the server's message and code rather than kube's debug dump
//! of the `Status` (which kube's `Display` of an API error includes).

use std::error::Error;

/// A Kubernetes API error as a person reads it: `<server message> (<code> <reason>)` for a refusal, the
/// cause chain for anything else (connection, TLS, decoding).
pub fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({} {})", status.message, status.code, status.reason),
        other => error_chain(other),
    }
}

/// The error and its sources, joined by ": ", skipping a source whose text is already in the message and
/// ending at a Kubernetes API refusal (rendered by [`kube_message`]; its own sources repeat it).
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let (mut msg, mut source) = piece(e);
    while let Some(s) = source {
        let (text, next) = piece(s);
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = next;
    }
    msg
}

/// One link of the chain and the next one to show.
fn piece<'a>(e: &'a (dyn Error + 'static)) -> (String, Option<&'a (dyn Error + 'static)>) {
    match e.downcast_ref::<kube::Error>() {
        Some(api @ kube::Error::Api(_)) => (kube_message(api), None),
        _ => (e.to_string(), e.source()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden() -> kube::Error {
        let mut status = kube::core::Status::failure(
            "jobs.batch is forbidden: User \"system:serviceaccount:k8up-system:k8up\" cannot create resource \"jobs\"",
            "Forbidden",
        );
        status.code = 403;
        kube::Error::Api(status.boxed())
    }

    #[derive(Debug, thiserror::Error)]
    #[error("failed to create job backup-x")]
    struct Wrapper(#[source] kube::Error);

    #[test]
    fn an_api_error_reads_as_the_servers_message_and_code_without_the_status_dump() {
        assert_eq!(
            kube_message(&forbidden()),
            "jobs.batch is forbidden: User \"system:serviceaccount:k8up-system:k8up\" cannot create resource \
             \"jobs\" (403 Forbidden)"
        );
    }

    #[test]
    fn a_chain_ending_in_an_api_refusal_shows_it_once_and_without_the_dump() {
        let chain = error_chain(&Wrapper(forbidden()));
        assert_eq!(
            chain,
            "failed to create job backup-x: jobs.batch is forbidden: User \
             \"system:serviceaccount:k8up-system:k8up\" cannot create resource \"jobs\" (403 Forbidden)"
        );
        assert!(!chain.contains("Status {"), "{chain}");
    }

    #[test]
    fn other_sources_are_joined_and_repeats_skipped() {
        let io = std::io::Error::other("connection refused");
        #[derive(Debug, thiserror::Error)]
        #[error("reading pods: connection refused")]
        struct Repeats(#[source] std::io::Error);
        assert_eq!(error_chain(&Repeats(io)), "reading pods: connection refused");
        assert_eq!(
            error_chain(&Wrapper(kube::Error::LinesCodecMaxLineLengthExceeded)),
            format!(
                "failed to create job backup-x: {}",
                kube::Error::LinesCodecMaxLineLengthExceeded
            )
        );
    }
}
