//! The `log` crate's records, and panics, written to Envoy's log through `proxy_log`.

use std::fmt::Write;

use super::hostcall::{self, log_level};

struct HostLogger;

static LOGGER: HostLogger = HostLogger;

/// Installs the logger and the panic hook (once per VM) and follows Envoy's level for the `wasm`
/// component (`--component-log-level wasm:debug` shows the debug lines), read when called.
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        // A panic aborts the VM (panic = "abort"): leave Envoy a line saying where and why. The
        // message is the panic's own text, which never holds a token or an attribute value.
        std::panic::set_hook(Box::new(|panic| hostcall::log(log_level::CRITICAL, &panic.to_string())));
    }
    log::set_max_level(match hostcall::log_level().unwrap_or(log_level::INFO) {
        log_level::TRACE => log::LevelFilter::Trace,
        log_level::DEBUG => log::LevelFilter::Debug,
        log_level::INFO => log::LevelFilter::Info,
        log_level::WARN => log::LevelFilter::Warn,
        log_level::ERROR => log::LevelFilter::Error,
        _ => log::LevelFilter::Off,
    });
}

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => log_level::TRACE,
            log::Level::Debug => log_level::DEBUG,
            log::Level::Info => log_level::INFO,
            log::Level::Warn => log_level::WARN,
            log::Level::Error => log_level::ERROR,
        };
        let args = record.args();
        match args.as_str() {
            Some(message) => hostcall::log(level, message),
            None => {
                let mut message = String::new();
                // Writing into a String cannot fail.
                let _ = message.write_fmt(*args);
                hostcall::log(level, &message);
            }
        }
    }

    fn flush(&self) {}
}
