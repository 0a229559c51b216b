//! What a link is filed under on the staff forms: the client (from the address
//! book; picking one suggests its contacts as recipients, `static/contacts.js`)
//! and the reference (type and an id or URL). The form fields are `client`,
//! `ref_type` and `ref_value`.

use std::collections::HashMap;

use super::super::pages::{esc, script};
use super::super::HttpContext;
use super::session::Staff;
use crate::store::{Client, Contact, RefType, Reference};

/// The clients the staff member sees, with their contacts (empty on a failure,
/// which is logged: the form still works without them).
pub async fn book(ctx: &HttpContext, staff: &Staff) -> Vec<(Client, Vec<Contact>)> {
    match crate::addressbook::list_with_contacts(&ctx.db, &staff.user).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "reading the address book");
            Vec::new()
        }
    }
}

/// A `<select>` of the clients, `chosen` selected.
pub fn client_options(book: &[(Client, Vec<Contact>)], chosen: Option<i64>, none: &str) -> String {
    let mut out = format!("<option value=\"\">{}</option>", esc(none));
    for (c, contacts) in book {
        let list: Vec<serde_json::Value> = contacts
            .iter()
            .map(|k| serde_json::json!({ "name": k.name, "email": k.email }))
            .collect();
        out.push_str(&format!(
            "<option value=\"{id}\" data-contacts=\"{contacts}\"{sel}>{name}</option>",
            id = c.id,
            contacts = esc(&serde_json::Value::Array(list).to_string()),
            sel = if chosen == Some(c.id) {
                " selected"
            } else {
                ""
            },
            name = esc(&c.name),
        ));
    }
    out
}

/// `<option>`s of the reference types, `chosen` selected.
pub fn ref_type_options(chosen: Option<&str>, none: &str) -> String {
    let mut out = format!("<option value=\"\">{}</option>", esc(none));
    for t in RefType::ALL {
        out.push_str(&format!(
            "<option value=\"{v}\"{sel}>{v}</option>",
            v = t.as_str(),
            sel = if chosen == Some(t.as_str()) {
                " selected"
            } else {
                ""
            },
        ));
    }
    out
}

/// The client and reference fields of a create form, holding `form`'s values.
pub fn fields(book: &[(Client, Vec<Contact>)], form: &HashMap<String, String>) -> String {
    let chosen = form.get("client").and_then(|c| c.parse().ok());
    let contacts: String = book
        .iter()
        .flat_map(|(_, list)| list)
        .map(|k| {
            format!(
                "<option value=\"{}\">{}</option>",
                esc(&k.email),
                esc(&k.name)
            )
        })
        .collect();
    let hint = if book.is_empty() {
        "<p class=\"muted small\">No clients yet: add them under <a href=\"/app/clients\">Clients</a>.</p>"
    } else {
        "<p class=\"muted small\">Picking a client suggests its contacts as recipients.</p>"
    };
    format!(
        "<fieldset class=\"filed\"><legend>Client and reference <span class=\"muted\">(optional)</span></legend>\
         <label for=\"client\">Client</label><select id=\"client\" name=\"client\">{clients}</select>{hint}\
         <div id=\"contact-suggest\" class=\"suggest\" aria-live=\"polite\"></div>\
         <label for=\"ref_type\">Reference</label>\
         <div class=\"ref\"><select id=\"ref_type\" name=\"ref_type\" aria-label=\"Reference type\">{types}</select>\
         <input id=\"ref_value\" name=\"ref_value\" maxlength=\"500\" placeholder=\"an id or a URL, e.g. OPS-42\" \
         aria-label=\"Reference id or URL\" value=\"{value}\"></div></fieldset>\
         <datalist id=\"contact-list\">{contacts}</datalist>{style}{script}",
        clients = client_options(book, chosen, "none"),
        types = ref_type_options(form.get("ref_type").map(String::as_str), "none"),
        value = esc(form.get("ref_value").map(String::as_str).unwrap_or("")),
        style = STYLE,
        script = script("contacts.js"),
    )
}

const STYLE: &str = "<style>fieldset.filed{border:1px solid #d3d7de;border-radius:.5rem;margin:1rem 0;padding:.25rem .75rem}\
fieldset.filed legend{font-weight:600}fieldset.filed legend .muted{font-weight:400}\
.ref{display:flex;gap:.5rem;flex-wrap:wrap}.ref select{flex:0 0 auto}.ref input{flex:1 1 12rem}\
.suggest button{margin:0 .4rem .4rem 0;padding:.25rem .6rem;font-size:.85rem;background:#5b6270}</style>";

/// The client picked on a form (`None`: none).
pub fn client_of(form: &HashMap<String, String>) -> Result<Option<i64>, String> {
    match form.get("client").map(|c| c.trim()) {
        None | Some("") => Ok(None),
        Some(c) => c
            .parse()
            .map(Some)
            .map_err(|_| "Pick a client from the list.".to_string()),
    }
}

/// The reference given on a form (`None`: none). A value without a type is
/// `other`; a type without a value is no reference.
pub fn reference_of(form: &HashMap<String, String>) -> Result<Option<Reference>, String> {
    let value = form.get("ref_value").map(|v| v.trim()).unwrap_or("");
    if value.is_empty() {
        return Ok(None);
    }
    let kind = match form.get("ref_type").map(|t| t.trim()) {
        None | Some("") => RefType::Other,
        Some(t) => RefType::parse(t).ok_or_else(|| format!("{t:?} is not a reference type."))?,
    };
    Reference::new(kind, value).map(Some).map_err(|e| {
        let mut e = e;
        if let Some(first) = e.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        format!("{e}.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn references_read_from_forms() {
        assert_eq!(
            reference_of(&form(&[("ref_type", "ticket")])).unwrap(),
            None
        );
        let r = reference_of(&form(&[("ref_type", "ticket"), ("ref_value", " OPS-42 ")]))
            .unwrap()
            .unwrap();
        assert_eq!((r.kind, r.value.as_str()), (RefType::Ticket, "OPS-42"));
        let r = reference_of(&form(&[("ref_value", "x")])).unwrap().unwrap();
        assert_eq!(r.kind, RefType::Other);
        assert!(reference_of(&form(&[("ref_type", "fly"), ("ref_value", "x")])).is_err());
        assert_eq!(client_of(&form(&[("client", "")])).unwrap(), None);
        assert_eq!(client_of(&form(&[("client", "7")])).unwrap(), Some(7));
        assert!(client_of(&form(&[("client", "x")])).is_err());
    }
}
