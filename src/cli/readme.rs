//! The README's settings table and the declarations agree: every declared setting has its row
//! (flag, environment variable, default), and every row is a declared setting, one of the
//! command line's own options (`--config`, `--log-format`), or the log filter.

use clap::CommandFactory;

use crate::config::DECLARED;

/// One row of the table: flag, environment, default (the cells as written).
struct Row {
    flag: String,
    env: String,
    default: String,
}

/// The rows of the table under `## Configuration`.
fn rows() -> Vec<Row> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a Configuration section");
    section
        .lines()
        .skip_while(|line| !line.starts_with("| Flag |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            assert!(cells.len() >= 4, "a row of four cells: {line}");
            Row {
                flag: cells[0].to_owned(),
                env: cells[1].to_owned(),
                default: cells[2].to_owned(),
            }
        })
        .collect()
}

/// The first `code` span of a cell.
fn code(cell: &str) -> Option<&str> {
    cell.split('`').nth(1)
}

#[test]
fn every_declared_setting_has_its_row() {
    let rows = rows();
    for setting in DECLARED {
        let flag = setting.flag();
        let row = rows
            .iter()
            .find(|row| code(&row.flag) == Some(flag.as_str()))
            .unwrap_or_else(|| panic!("README: no row for {flag}"));
        assert_eq!(
            code(&row.env),
            Some(setting.env().as_str()),
            "README: environment variable of {flag}"
        );
        assert_eq!(
            row.default,
            setting.default.shown(),
            "README: default of {flag}"
        );
    }
}

#[test]
fn every_row_is_a_declared_setting() {
    let command = super::Cli::command();
    for row in rows() {
        let env = code(&row.env).unwrap_or_default();
        if env == crate::telemetry::LOG_FILTER_VAR {
            assert_eq!(row.flag, "—", "the log filter has no flag");
            continue;
        }
        if let Some(setting) = DECLARED.iter().find(|s| s.env() == env) {
            assert_eq!(code(&row.flag), Some(setting.flag().as_str()), "{env}");
            continue;
        }
        // Otherwise one of the command line's own options, read before the settings.
        let flag = code(&row.flag).unwrap_or_default();
        let option = command
            .get_arguments()
            .find(|arg| arg.get_long().map(|long| format!("--{long}")).as_deref() == Some(flag))
            .unwrap_or_else(|| panic!("README: {flag} ({env}) is not a declared setting"));
        assert_eq!(
            option.get_env().and_then(|e| e.to_str()),
            Some(env),
            "README: environment variable of {flag}"
        );
        let default = option
            .get_default_values()
            .first()
            .and_then(|d| d.to_str())
            .map_or_else(|| "—".to_owned(), |d| format!("`{d}`"));
        assert_eq!(row.default, default, "README: default of {flag}");
    }
}
