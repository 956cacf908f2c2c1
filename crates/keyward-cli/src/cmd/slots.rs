//! `keyward slots`: every slot of the module and the token in it (C_GetSlotList,
//! C_GetSlotInfo, C_GetTokenInfo).

use clap::Args;
use serde_json::json;

use crate::error::{Error, Result};
use crate::select::{App, Global, Token};

#[derive(Debug, Args)]
pub struct SlotsArgs {
    /// Print JSON for scripts
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, a: SlotsArgs) -> Result<()> {
    let app = App::open(g, None)?;
    let slots = app
        .p11
        .get_all_slots()
        .map_err(|e| Error::ck("listing slots", e))?;
    let tokens = app.tokens()?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for slot in slots {
        let si = app
            .p11
            .get_slot_info(slot)
            .map_err(|e| Error::ck("reading slot information", e))?;
        let t: Option<&Token> = tokens.iter().find(|t| t.slot == slot);
        let (label, uri) = match t {
            Some(t) if t.initialized => (t.label.clone(), t.uri().to_string()),
            Some(_) => ("(uninitialised token)".to_owned(), String::new()),
            None => ("(no token)".to_owned(), String::new()),
        };
        rows.push(vec![
            slot.id().to_string(),
            label.clone(),
            si.slot_description().trim_end().to_owned(),
            uri.clone(),
        ]);
        json.push(json!({
            "slot_id": slot.id(),
            "description": si.slot_description().trim_end(),
            "manufacturer": si.manufacturer_id().trim_end(),
            "token_present": si.token_present(),
            "token_initialized": t.is_some_and(|t| t.initialized),
            "label": t.map(|t| t.label.clone()),
            "uri": if uri.is_empty() { None } else { Some(uri) },
        }));
    }
    if a.json {
        return super::list::print_json(&json);
    }
    crate::io::print(&table(&["SLOT", "TOKEN", "DESCRIPTION", "URI"], &rows))
}

/// A left-aligned table with a header row; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                let pad = widths.get(i).copied().unwrap_or(0) - c.chars().count() + 2;
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}
