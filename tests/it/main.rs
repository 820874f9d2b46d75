//! Hookline's end-to-end tests: one integration-test binary, one module per
//! behaviour, against real nats-server processes and the real binaries
//! (harness in the `hookline-tests` library, `tests/src`). One binary links
//! the stack once; on two cores each extra test binary cost minutes.
//!
//! The chaos scenarios are `#[ignore]`d here and run by `scripts/chaos`.

mod alert_rules;
mod chaos;
mod cli_dlq;
mod cli_replay;
mod cli_send;
mod cli_status_trace;
mod cli_up;
mod command_lines;
mod console;
mod console_browser;
mod deploy_consistency;
mod downstream_examples;
mod durability_handled_once_across_nats_restart;
mod first_run_hints;
mod hostile_flood;
mod hostile_requests;
mod hostile_silent_clients;
mod hostile_slow_clients;
mod ingest_accepts_each_provider;
mod ingest_answers_bad_requests;
mod ingest_binary;
mod ingest_bounds_bodies_in_flight;
mod ingest_captures_secrets;
mod ingest_dedups_deliveries;
mod ingest_envelope_roundtrip;
mod ingest_fits_max_payload;
mod ingest_logs_outages_once;
mod ingest_reads_events_and_ids;
mod ingest_replay_guard;
mod ingest_secret_files;
mod ingest_survives_nats_outage;
mod ingest_verifies_vectors;
mod keys_are_bounded;
mod processor_backs_off_timeouts;
mod processor_binary;
mod processor_dead_letters_poison;
mod processor_drains_on_sigterm;
mod processor_group_start;
mod processor_handles_once;
mod processor_http_handler;
mod processor_redrives_dead_letters;
mod processor_retries_panics;
mod processor_retries_with_backoff;
mod processor_scales_out;
mod processor_survives_hard_kill;
mod processor_throughput;
mod processor_updates_consumer;
mod security_fail_closed;
mod security_nats_credentials;
mod security_secrets_never_leak;
mod stops_when_output_is_gone;
mod streams_have_one_owner;
mod topology;
