//! The bell in the header of every staff page: a link to the notification feed
//! (`notices.rs`) with the unread count, and the preferences link beside it.

const BELL_STYLE: &str = "<style>a.bell{position:relative;text-decoration:none;line-height:1;color:#1d1f23;display:inline-flex}\
a.bell .count{position:absolute;top:-.55rem;right:-.8rem;background:#a4161a;color:#fff;border-radius:1rem;\
font-size:.7rem;font-weight:700;padding:.05rem .35rem;min-width:.6rem;text-align:center}\
</style>";

/// The bell in the header: a link to the feed with the unread count.
pub(super) fn bell(unread: u64) -> String {
    let (count, label) = match unread {
        0 => (String::new(), "Notifications".to_string()),
        n => (
            format!("<span class=\"count\">{}</span>", n.min(99)),
            format!("Notifications, {n} unread"),
        ),
    };
    format!(
        "{BELL_STYLE}<a class=\"bell\" href=\"/app/notifications\" title=\"{label}\" aria-label=\"{label}\">\
         <svg aria-hidden=\"true\" width=\"20\" height=\"20\" viewBox=\"0 0 24 24\" fill=\"none\" stroke=\"currentColor\" \
         stroke-width=\"2\" stroke-linecap=\"round\" stroke-linejoin=\"round\">\
         <path d=\"M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9\"/><path d=\"M13.73 21a2 2 0 0 1-3.46 0\"/></svg>{count}</a>\
         <a href=\"/app/preferences\">Preferences</a>"
    )
}
