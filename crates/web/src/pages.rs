//! The board's pages, served from the binary: the sign-in page, the board page and their
//! script and style. They hold no data; the board page reads everything from the HTTP
//! interface ([`crate::server`]) and never puts a patient identifier in a URL.

/// The board page.
pub const BOARD_HTML: &str = include_str!("../assets/board.html");

/// The sign-in page.
pub const LOGIN_HTML: &str = include_str!("../assets/login.html");

/// A static file under `/assets/`: its content type and content.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "board.js" => Some((
            "text/javascript; charset=utf-8",
            include_str!("../assets/board.js"),
        )),
        "login.js" => Some((
            "text/javascript; charset=utf-8",
            include_str!("../assets/login.js"),
        )),
        "board.css" => Some((
            "text/css; charset=utf-8",
            include_str!("../assets/board.css"),
        )),
        _ => None,
    }
}
