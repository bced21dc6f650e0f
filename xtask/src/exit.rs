//! The exit codes other than 0 (success) and 1 (error). Clap gives 2 for the usage errors it finds
//! itself.

/// An error whose exit code is not the generic 1.
#[derive(Debug)]
pub enum Exit {
    /// A bad option value found after parsing (a recipient that is not a key, for one): exit 2.
    Usage(String),
    /// The user declined, or there was no terminal to ask on and no `--yes`: exit 3.
    Refused(String),
    /// `verify` found that a backup does not restore, or restores to something broken: exit 4.
    VerificationFailed(String),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Usage(message) | Exit::Refused(message) | Exit::VerificationFailed(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for Exit {}

impl Exit {
    /// The process exit code for `error`: 2, 3 or 4 for an [`Exit`], else 1.
    pub fn code_of(error: &anyhow::Error) -> u8 {
        match error.downcast_ref::<Exit>() {
            Some(Exit::Usage(_)) => 2,
            Some(Exit::Refused(_)) => 3,
            Some(Exit::VerificationFailed(_)) => 4,
            None => 1,
        }
    }
}
