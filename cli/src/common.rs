//! What every subcommand shares: the connection flags, logging, signals,
//! exit codes and the one mapping from core errors to them.

use std::io::Write;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args};
use oc2mqtt::Error;
use oc2mqtt::client::{ClientConfig, MqttVersion};
use oc2mqtt::settings::{Settings, Spelling, Value};
use oc2mqtt::topics::{Peer, ResponseTopics};

/// A flag's value read by core's own parser, refused with core's text
/// (`unknown peer 'x'; expected spec, otupy, yuuki or oif`): the names a
/// flag takes are core's, as in every language.
pub(crate) fn by_core<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    Error: From<T::Err>,
{
    s.parse().map_err(|e| reason(&Error::from(e)))
}

/// The names a flag takes, for its `--help` value name (`spec|otupy|bare`).
pub(crate) fn names<T: std::fmt::Display>(names: &[T]) -> String {
    let names: Vec<String> = names.iter().map(T::to_string).collect();
    names.join("|")
}

static PEERS: LazyLock<String> = LazyLock::new(|| names(&Peer::NAMES));
static RESPONSE_TOPICS: LazyLock<String> = LazyLock::new(|| names(&ResponseTopics::NAMES));
static MQTT_VERSIONS: LazyLock<String> = LazyLock::new(|| names(&MqttVersion::NAMES));
static QOS_LEVELS: LazyLock<String> = LazyLock::new(|| names(&oc2mqtt::client::QOS_LEVELS));

/// Exit code: success.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit code: connection, authentication, TLS, publish and other runtime failures.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit code: bad usage or configuration (clap's own usage errors are 2 as well).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code: `send` timed out with expected responders missing.
pub(crate) const EXIT_INCOMPLETE: u8 = 3;
/// Exit code: stopped by SIGINT or SIGTERM before it was ready (128 + SIGINT).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// A failure to report as `error: <message>` with an exit code; one with
/// [`EXIT_OK`] ends the run quietly (see [`Failure::quiet`]).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// An end that is no error to report: the reader of stdout went away.
    /// It stops the run with exit 0 and prints nothing; the message is for logs.
    pub(crate) fn quiet(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_OK,
            message: message.into(),
        }
    }

    /// Whether the run ends quietly (see [`Failure::quiet`]).
    pub(crate) fn is_quiet(&self) -> bool {
        self.code == EXIT_OK
    }

    /// A usage or configuration error (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// A runtime failure (exit 1).
    pub(crate) fn runtime(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }
}

/// The exit code for each kind of core error; the message is the error's Display.
impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            // Something the user wrote: the configuration, an id, a topic, the command.
            Error::Message(_) | Error::Topic(_) | Error::Config(_) | Error::Io(_) => EXIT_USAGE,
            Error::Connect(_)
            | Error::Auth(_)
            | Error::Tls(_)
            | Error::Timeout(_)
            | Error::Publish(_)
            | Error::Closed(_)
            | Error::Handler(_) => EXIT_FAILURE,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

/// Parses a positive number of seconds (fractions allowed).
pub(crate) fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("'{s}': expected a positive number of seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("'{s}': {e}"))
}

/// Connection flags, on every subcommand. Each can also come from an
/// `OC2MQTT_*` environment variable (shown in --help), so that a script or a
/// container sets them once; a flag wins over its variable.
/// `--insecure-skip-verify` has no variable on purpose: a forgotten one
/// would switch off TLS verification unseen.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Connection")]
pub(crate) struct Common {
    /// Broker URL: mqtt://HOST:PORT, mqtts://HOST:PORT, ws://HOST:PORT/PATH or wss://HOST:PORT/PATH; repeat, or separate with commas, for failover (tried in order).
    #[arg(
        long = "broker",
        value_name = "URL",
        required = true,
        env = "OC2MQTT_BROKER",
        value_delimiter = ','
    )]
    pub(crate) brokers: Vec<String>,
    /// MQTT client id [default: oc2mqtt-<random>, or read from --client-id-file].
    #[arg(long, value_name = "ID", env = "OC2MQTT_CLIENT_ID")]
    pub(crate) client_id: Option<String>,
    /// File holding the client id: read if it exists, else created with a generated
    /// one, so that the broker can resume the session after a restart.
    #[arg(long, value_name = "PATH", env = "OC2MQTT_CLIENT_ID_FILE")]
    pub(crate) client_id_file: Option<PathBuf>,
    /// User name for the broker.
    #[arg(long, value_name = "NAME", env = "OC2MQTT_USERNAME")]
    pub(crate) username: Option<String>,
    /// Read the broker password from this environment variable [default:
    /// OC2MQTT_PASSWORD, when it is set]. There is no password flag: a
    /// password never goes on the command line, into --help or into logs.
    #[arg(long, value_name = "VAR")]
    pub(crate) password_env: Option<String>,
    /// CA certificates (PEM) the broker's certificate must chain to.
    #[arg(long, value_name = "PEM", env = "OC2MQTT_CA")]
    pub(crate) ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --key.
    #[arg(long, value_name = "PEM", env = "OC2MQTT_CERT")]
    pub(crate) cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS; needs --cert.
    #[arg(long, value_name = "PEM", env = "OC2MQTT_KEY")]
    pub(crate) key: Option<PathBuf>,
    /// Do not verify the broker's certificate and host name. Testing only.
    #[arg(long)]
    pub(crate) insecure_skip_verify: bool,
    /// MQTT protocol version: 5, 3.1.1, or auto (try 5, fall back to 3.1.1) [default: auto].
    #[arg(long, value_name = MQTT_VERSIONS.as_str(), value_parser = by_core::<MqttVersion>, env = "OC2MQTT_MQTT_VERSION")]
    pub(crate) mqtt_version: Option<MqttVersion>,
    /// QoS of publishes and subscriptions [default: 1].
    #[arg(long, value_name = QOS_LEVELS.as_str(), env = "OC2MQTT_QOS")]
    pub(crate) qos: Option<u8>,
    /// A prefix before oc2/ in every topic (e.g. site-a/).
    #[arg(long, value_name = "PREFIX", env = "OC2MQTT_TOPIC_PREFIX")]
    pub(crate) topic_prefix: Option<String>,
    /// Keep-alive interval in seconds, at most 300 [default: 60].
    #[arg(long, value_name = "SEC", env = "OC2MQTT_KEEP_ALIVE")]
    pub(crate) keep_alive: Option<u32>,
    /// Peers to suit: spec (MQTT-T as written), otupy (its flat dialect and
    /// oc2/rsp/device/<id>), yuuki (commands also on oc2/cmd), oif (responses
    /// also on oc2/rsp/<producer>, msgType request/response) [default: spec].
    #[arg(long, value_name = PEERS.as_str(), value_parser = by_core::<Peer>, env = "OC2MQTT_PEER")]
    pub(crate) peer: Option<Peer>,
    /// The same as --peer otupy (kept for existing scripts).
    #[arg(long, hide = true)]
    pub(crate) otupy_compat: bool,
    /// Where responses are published: shared (oc2/rsp, which every producer
    /// subscribes), producer (oc2/rsp/<producer> only) or both [default: as --peer has it].
    #[arg(long, value_name = RESPONSE_TOPICS.as_str(), value_parser = by_core::<ResponseTopics>, env = "OC2MQTT_RESPONSE_TOPICS")]
    pub(crate) response_topics: Option<ResponseTopics>,
    /// How long one connection attempt may take, in seconds [default: 10].
    #[arg(long, value_name = "SEC", env = "OC2MQTT_CONNECT_TIMEOUT")]
    pub(crate) connect_timeout: Option<u32>,
    /// Any other client setting, by its name in the library
    /// (session_expiry_secs=600, message_expiry_secs=30, max_payload=65536,
    /// ...); repeatable. Applied after the flags above. Not for the password.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) settings: Vec<String>,
    /// Log to stderr: -v info, -vv debug, -vvv trace, for oc2mqtt's own
    /// logs (default: warnings); other libraries log warnings only.
    /// RUST_LOG, when set, wins. Colours only on a terminal, never with NO_COLOR.
    #[arg(short, long, action = ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// The environment variable that holds the password when --password-env is not given.
pub(crate) const PASSWORD_VAR: &str = "OC2MQTT_PASSWORD";

impl Common {
    /// Settles --client-id against --client-id-file, which exclude each
    /// other: a flag wins over the other's environment variable, so that
    /// `--client-id-file` on the command line overrides `OC2MQTT_CLIENT_ID`.
    pub(crate) fn settle_sources(&mut self, matches: &ArgMatches) -> Result<(), Failure> {
        if matches.value_source("brokers") == Some(ValueSource::EnvVariable)
            && self.brokers.iter().any(|b| b.trim().is_empty())
        {
            return Err(Failure::usage(format!(
                "OC2MQTT_BROKER is set to '{}', which holds an empty broker URL: set it to \
                 mqtt://HOST:PORT (several separated by commas), or unset it and pass --broker",
                self.brokers.join(",")
            )));
        }
        if self.client_id.is_none() || self.client_id_file.is_none() {
            return Ok(());
        }
        let from_env = |id: &str| matches.value_source(id) == Some(ValueSource::EnvVariable);
        match (from_env("client_id"), from_env("client_id_file")) {
            (true, false) => self.client_id = None,
            (false, true) => self.client_id_file = None,
            (false, false) => {
                return Err(Failure::usage(
                    "--client-id and --client-id-file cannot be used together",
                ));
            }
            (true, true) => {
                return Err(Failure::usage(
                    "OC2MQTT_CLIENT_ID and OC2MQTT_CLIENT_ID_FILE cannot both be set",
                ));
            }
        }
        Ok(())
    }

    /// The client configuration these flags describe, checked by the core;
    /// its errors name the flags.
    pub(crate) fn config(&self) -> Result<ClientConfig, Failure> {
        let mut c = ClientConfig {
            brokers: self.brokers.clone(),
            ..ClientConfig::default()
        };
        c.client_id.clone_from(&self.client_id);
        c.client_id_file.clone_from(&self.client_id_file);
        c.username.clone_from(&self.username);
        let password_var = match &self.password_env {
            Some(var) => Some(var.as_str()),
            None => std::env::var_os(PASSWORD_VAR).map(|_| PASSWORD_VAR),
        };
        if let Some(var) = password_var {
            let source = if self.password_env.is_some() {
                format!("--password-env {var}")
            } else {
                var.to_owned()
            };
            let password = std::env::var(var).map_err(|e| match e {
                std::env::VarError::NotPresent => Failure::usage(format!(
                    "{source}: the environment variable {var} is not set"
                )),
                std::env::VarError::NotUnicode(_) => Failure::usage(format!(
                    "{source}: the environment variable {var} is not valid UTF-8"
                )),
            })?;
            c.password = Some(password);
        }
        c.ca_file.clone_from(&self.ca);
        c.cert_file.clone_from(&self.cert);
        c.key_file.clone_from(&self.key);
        c.insecure_skip_verify = self.insecure_skip_verify;
        if self.insecure_skip_verify {
            eprintln!(
                "WARNING: --insecure-skip-verify: the broker's TLS certificate and host name are NOT verified; \
                 anyone between you and the broker can read and forge OpenC2 commands. Use it for testing only."
            );
        }
        if let Some(v) = self.mqtt_version {
            c.mqtt_version = v;
        }
        if let Some(q) = self.qos {
            c.qos = q;
        }
        c.topic_prefix.clone_from(&self.topic_prefix);
        if let Some(k) = self.keep_alive {
            c.keep_alive_secs = k;
        }
        if let Some(p) = self.peer {
            c.peer = p;
        }
        // What --otupy-compat means beside --peer is core's rule (`ClientConfig::peer`).
        c.otupy_compat = self.otupy_compat;
        c.response_topics = self.response_topics;
        if let Some(t) = self.connect_timeout {
            c.connect_timeout_secs = t;
        }
        for setting in &self.settings {
            apply_setting(&mut c, setting)?;
        }
        c.validate_naming(flag)?;
        Ok(c)
    }

    /// The brokers, for messages.
    pub(crate) fn broker_list(&self) -> String {
        self.brokers.join(", ")
    }
}

/// Applies one `--set NAME=VALUE` through the core's settings table (which
/// names, checks and parses every client setting), so a setting the CLI has
/// no flag for is still reachable.
fn apply_setting(c: &mut ClientConfig, setting: &str) -> Result<(), Failure> {
    let usage = |why: String| Failure::usage(format!("--set {setting}: {why}"));
    let Some((name, value)) = setting.split_once('=') else {
        return Err(usage("expected NAME=VALUE".to_owned()));
    };
    let known = ClientConfig::setting(Spelling::Snake, name).map_err(|e| usage(reason(&e)))?;
    if known.secret {
        // Not `usage`: the message must not repeat the value.
        return Err(Failure::usage(format!(
            "--set {name}: cannot be set on the command line, where anyone on this machine \
             can read it; use --password-env"
        )));
    }
    Value::parse(known.kind, value)
        .and_then(|v| c.set(Spelling::Snake, name, v))
        .map_err(|e| usage(reason(&e)))
}

/// A core error's text without its `configuration: ` prefix.
pub(crate) fn reason(e: &Error) -> String {
    match e {
        Error::Config(why) => why.clone(),
        other => other.to_string(),
    }
}

/// The flag that sets a [`ClientConfig`] field, for the core's messages.
fn flag(setting: &str) -> String {
    let flag = match setting {
        "keep_alive_secs" => "keep-alive",
        "connect_timeout_secs" => "connect-timeout",
        "cert_file" => "cert",
        "key_file" => "key",
        other => return format!("--{}", other.replace('_', "-")),
    };
    format!("--{flag}")
}

/// The log filter for `-v` counts: oc2mqtt's own targets at the chosen
/// level, every other library (the MQTT engine, rustls) at warnings only,
/// so that `-v` shows what oc2mqtt does rather than its dependencies' chatter.
fn log_filter(verbose: u8) -> String {
    let level = match verbose {
        0 => return "warn".to_owned(),
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    format!("warn,oc2mqtt={level},oc2mqtt_cli={level}")
}

/// Whether log lines may carry ANSI colours: only on a terminal, and not
/// when NO_COLOR is set to anything but the empty string (no-color.org).
fn log_colours(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the tracing subscriber: stderr, `warn` by default, more with `-v`.
pub(crate) fn init_logging(verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = log_filter(verbose);
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => EnvFilter::try_new(s).unwrap_or_else(|e| {
            eprintln!("warning: RUST_LOG is not a valid filter ({e}); using {default}");
            EnvFilter::new(&default)
        }),
        _ => EnvFilter::new(&default),
    };
    let colours = log_colours(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    // `try_init`: an embedder (the Python wheel) may run the CLI twice in one process.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(std::io::stderr)
        .try_init();
}

/// SIGINT and SIGTERM, installed before connecting so that neither can kill
/// the process uncleanly once it announced itself.
pub(crate) struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn install() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let err = |e: std::io::Error| {
                Failure::runtime(format!("cannot install the signal handlers: {e}"))
            };
            Ok(Self {
                term: signal(SignalKind::terminate()).map_err(err)?,
                int: signal(SignalKind::interrupt()).map_err(err)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for SIGINT or SIGTERM and returns its name.
    pub(crate) async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Runs `connecting` (connect and subscribe) unless SIGINT or SIGTERM
/// comes first: a broker that never answers must not hold the CLI.
pub(crate) async fn connect_or_signal<T>(
    signals: &mut Signals,
    command: &str,
    brokers: &str,
    connecting: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Failure> {
    tokio::select! {
        r = connecting => r.map_err(Failure::from),
        signal = signals.recv() => Err(Failure {
            code: EXIT_INTERRUPTED,
            message: format!("oc2mqtt {command}: {signal} while connecting to {brokers}: stopped"),
        }),
    }
}

/// "MQTT 5" or "MQTT 3.1.1" (the version spoken, by core's name), for ready lines.
pub(crate) fn protocol_words(v: Option<MqttVersion>) -> String {
    match v {
        Some(v @ (MqttVersion::V5 | MqttVersion::V311)) => format!("MQTT {v}"),
        _ => "MQTT".to_owned(),
    }
}

/// Writes one line to stdout and flushes it, so that readers see each line as it comes.
pub(crate) fn print_line(line: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(stdout_failure)
}

/// Writes text to stdout as it is (completions, the man page).
pub(crate) fn print_text(text: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text)
        .and_then(|()| out.flush())
        .map_err(stdout_failure)
}

/// A write to stdout that failed. A closed pipe (`monitor --json | head -1`)
/// means the reader has what it wanted: the run ends quietly with exit 0,
/// as Unix tools do on SIGPIPE (Rust ignores SIGPIPE, so it comes as EPIPE).
fn stdout_failure(e: std::io::Error) -> Failure {
    let message = format!("cannot write to stdout: {e}");
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Failure::quiet(message)
    } else {
        Failure::runtime(message)
    }
}

/// `HH:MM:SS.mmm` (UTC) of a time in milliseconds since the epoch.
pub(crate) fn clock(epoch_ms: i64) -> String {
    let ms = epoch_ms.rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Common` as clap reads it from `args`.
    fn common(args: &[&str]) -> Common {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            common: Common,
        }
        use clap::Parser;
        let argv = ["oc2mqtt", "--broker", "mqtt://h:1883"];
        Cli::try_parse_from(argv.iter().chain(args))
            .expect("args")
            .common
    }

    #[test]
    fn otupy_compat_means_what_core_says_beside_peer() {
        let peer = |args: &[&str]| common(args).config().expect("config").peer();
        assert_eq!(peer(&[]), Peer::Spec);
        assert_eq!(peer(&["--otupy-compat"]), Peer::Otupy);
        // Core's rule: --otupy-compat turns the specification's peer into otupy's
        // (the CLI used to keep spec here), and leaves another peer as it is.
        assert_eq!(peer(&["--peer", "spec", "--otupy-compat"]), Peer::Otupy);
        assert_eq!(peer(&["--peer", "yuuki", "--otupy-compat"]), Peer::Yuuki);
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00.000");
        assert_eq!(clock(1_595_268_027_123), "18:00:27.123");
    }

    #[test]
    fn set_reaches_the_settings_that_have_no_flag() {
        let mut c = ClientConfig::new("mqtt://h:1883");
        for setting in [
            "session_expiry_secs=600",
            "message_expiry_secs=30",
            "max_payload=65536",
            "mqtt_version=3.1.1",
        ] {
            apply_setting(&mut c, setting).expect(setting);
        }
        assert_eq!(
            (
                c.session_expiry_secs,
                c.message_expiry_secs,
                c.max_payload,
                c.mqtt_version
            ),
            (600, Some(30), 65536, MqttVersion::V311)
        );
        let e = apply_setting(&mut c, "max_payload").expect_err("no value");
        assert_eq!(e.message, "--set max_payload: expected NAME=VALUE");
    }

    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(
            parse_secs("0"),
            Err("'0': expected a positive number of seconds".to_owned())
        );
        assert_eq!(
            parse_secs("NaN"),
            Err("'NaN': expected a positive number of seconds".to_owned())
        );
        assert_eq!(
            parse_secs("soon"),
            Err("'soon' is not a number of seconds".to_owned())
        );
    }

    #[test]
    fn a_closed_stdout_ends_quietly_other_write_errors_do_not() {
        let f = stdout_failure(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(f.is_quiet() && f.code == EXIT_OK, "{f:?}");
        let f = stdout_failure(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(f.code, EXIT_FAILURE);
        assert!(!f.is_quiet());
    }

    #[test]
    fn verbose_logs_are_oc2mqtts_own_and_colours_need_a_terminal() {
        assert_eq!(log_filter(0), "warn");
        assert_eq!(log_filter(1), "warn,oc2mqtt=info,oc2mqtt_cli=info");
        assert_eq!(log_filter(5), "warn,oc2mqtt=trace,oc2mqtt_cli=trace");
        assert!(log_colours(true, None));
        assert!(log_colours(true, Some("".into())));
        assert!(!log_colours(true, Some("1".into())));
        assert!(!log_colours(false, None));
    }

    #[test]
    fn core_errors_map_to_exit_codes() {
        let f = Failure::from(Error::Config("qos is 0".into()));
        assert_eq!(
            (f.code, f.message.as_str()),
            (EXIT_USAGE, "configuration: qos is 0")
        );
        let f = Failure::from(Error::Connect(
            "cannot connect to mqtt://x:1: connection refused".into(),
        ));
        assert_eq!(f.code, EXIT_FAILURE);
        assert_eq!(
            Failure::from(Error::Tls("certificate verify failed".into())).message,
            "TLS: certificate verify failed"
        );
    }
}
