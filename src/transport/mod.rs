//! Transports move bytes between peers and act on the pipeline's verdicts through
//! `pipeline::deliver`. They never read a judged message again: which request it belongs to is
//! the outcome's `Routing`, from the pipeline's one table of requests in flight. Only HTTP's edge
//! reads a body's `codec::facts`, before any pipeline exists (is it `initialize`? do the modern
//! headers mirror it?).
//!
//! | file       | job                                                             |
//! |------------|-----------------------------------------------------------------|
//! | `stdio.rs` | `wrap`: our stdin/stdout ↔ a child server's stdin/stdout         |
//! | `child.rs` | spawning the child in its own process group, signalling it       |
//! | `landlock.rs` | Linux Landlock ruleset hiding the state dir from `wrap`'s child |
//! | `http/`    | `serve`: Streamable HTTP ↔ a stdio child per session, or an HTTP upstream |

pub mod child;
pub mod http;
pub mod landlock;
pub mod line_heads;
pub mod stdio;
