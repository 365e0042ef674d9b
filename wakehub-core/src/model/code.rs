//! [`ErrorCode`]: the one list of stable, machine-readable failure codes. Model refusals,
//! store and engine errors, connector failures, failed steps, `cascade-error` events and the
//! GraphQL `extensions.code` all speak it, so a code means the same thing everywhere.

use std::fmt;

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// A stable failure code. Its [`as_str`](ErrorCode::as_str) form (`NOT_FOUND`,
        /// `TIMEOUT`…) is written in the journal and returned by the API; it never changes
        /// once released.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as written in the journal and the API (`AUTH_FAILED`…).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }
        }
    };
}

codes! {
    // ----- requests and the model -----
    /// No such node, cascade, proposal, link, or platform object (unknown vmid, container…).
    NotFound = "NOT_FOUND",
    /// The input breaks a rule (hosting, names, keys…).
    Validation = "VALIDATION",
    /// A dependency link would close a cycle through dependencies and hosting.
    Cycle = "CYCLE",
    /// The request conflicts with what exists or with a cascade in flight.
    Conflict = "CONFLICT",
    /// A cascade on this node is still running.
    CascadeInProgress = "CASCADE_IN_PROGRESS",
    /// WakeHub is shutting down and accepts no new work.
    ShuttingDown = "SHUTTING_DOWN",
    /// This instance follows another on a shared database: only the instance holding the
    /// database's lease runs work (the API forwards mutations to it).
    NotLeader = "NOT_LEADER",
    /// The caller did not authenticate.
    Unauthenticated = "UNAUTHENTICATED",
    /// The caller's role or scope does not allow this.
    Forbidden = "FORBIDDEN",
    /// The caller sent too much too fast.
    RateLimited = "RATE_LIMITED",
    // ----- how a cascade ends without completing -----
    /// A replay asked for events older than the journal keeps (pruned by its retention).
    JournalPruned = "JOURNAL_PRUNED",
    /// A user cancelled the cascade before every step ran.
    Cancelled = "CANCELLED",
    /// WakeHub stopped while the cascade (or an operation it joined) ran.
    Interrupted = "INTERRUPTED",
    /// A fault inside WakeHub (details in its log only).
    Internal = "INTERNAL",
    // ----- the store and secrets -----
    /// The database was written by a newer WakeHub.
    StoreTooNew = "STORE_TOO_NEW",
    /// A secret could not be sealed or opened (wrong master key, damaged credential).
    Secret = "SECRET",
    /// A referenced secret cannot be read.
    SecretUnavailable = "SECRET_UNAVAILABLE",
    // ----- platforms (connectors) -----
    /// Credentials were refused.
    AuthFailed = "AUTH_FAILED",
    /// The platform could not be reached.
    Unreachable = "UNREACHABLE",
    /// The operation did not finish in time.
    Timeout = "TIMEOUT",
    /// An SSH host key differs from the pinned one.
    HostKeyMismatch = "HOST_KEY_MISMATCH",
    /// A TLS certificate differs from the pinned one.
    TlsPinMismatch = "TLS_PIN_MISMATCH",
    /// The node's connector configuration is invalid.
    InvalidConfig = "INVALID_CONFIG",
    /// The connector does not support this operation.
    Unsupported = "UNSUPPORTED",
    /// The platform reported an error.
    PlatformError = "PLATFORM_ERROR",
    /// The readiness probe never passed.
    NotReady = "NOT_READY",
    /// A stack's service failed its health check (or never became healthy in time).
    Unhealthy = "UNHEALTHY",
    /// A stack's one-shot service exited with a status other than 0.
    OneShotFailed = "ONE_SHOT_FAILED",
    /// A compose file is outside the accepted subset or malformed.
    ComposeInvalid = "COMPOSE_INVALID",
    /// The command is already running: it is not cancelled, it runs to its end.
    CommandRunning = "COMMAND_RUNNING",
    // ----- connector plugins -----
    /// A plugin asked for something its node's configuration does not grant.
    CapabilityDenied = "CAPABILITY_DENIED",
    /// A plugin call ran out of time.
    PluginTimeout = "PLUGIN_TIMEOUT",
    /// A plugin went over its memory limit.
    PluginMemory = "PLUGIN_MEMORY",
    /// A plugin trapped (a panic, an invalid operation).
    PluginTrap = "PLUGIN_TRAP",
    /// A plugin faulted too often in a row and is no longer called.
    PluginQuarantined = "PLUGIN_QUARANTINED",
    /// A file is not a connector plugin (not a component, wrong world, missing export).
    PluginInvalid = "PLUGIN_INVALID",
    /// A plugin built for a WIT version this host does not support.
    PluginIncompatible = "PLUGIN_INCOMPATIBLE",
    /// A node's connector is a plugin that no loaded plugin provides (the server was started
    /// without the `--plugins` directory that holds it).
    PluginNotLoaded = "PLUGIN_NOT_LOADED",
}

impl ErrorCode {
    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// Whether the same call may succeed later (the platform was unreachable or slow).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::Unreachable | ErrorCode::Timeout)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
