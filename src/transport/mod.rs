//! Transports move bytes between peers and act on the pipeline's verdicts through
//! `pipeline::deliver`. They look inside a message only through `codec::facts` (HTTP must route
//! answers by id, progress by token: facts of bytes the pipeline already parsed strictly).
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
