//! Attaching to a container that keeps its stdin (`stdin: true`) or has a terminal (`tty:
//! true`): the shim listens on `DIR/attach.sock` and serves it from its one poll loop (it has no
//! threads, see `run.rs`). Each client gets the container's output from when it connected and
//! may write to its stdin and resize its terminal.
//!
//! Messages are `[kind: u8][length: u32 BE][data]` both ways. Client → shim: [`STDIN`] data,
//! [`STDIN_CLOSE`], [`RESIZE`] (`cols: u16 BE, rows: u16 BE`). Shim → client: [`STDOUT`] or
//! [`STDERR`] data. With `stdinOnce`, the container's stdin is closed when the first client that
//! wrote to it goes away or closes it (as containerd does); otherwise it stays open for the next.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

pub const SOCKET: &str = "attach.sock";
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STDIN_CLOSE: u8 = 3;
pub const RESIZE: u8 = 4;
/// Largest message a client may send.
const MAX_MESSAGE: usize = 1 << 20;

/// One message.
pub fn message(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(kind);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Splits whole messages off the front of `buf`.
pub fn take_messages(buf: &mut Vec<u8>) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 5 {
            return Ok(out);
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > MAX_MESSAGE {
            return Err(format!("message of {len} bytes"));
        }
        if buf.len() < 5 + len {
            return Ok(out);
        }
        out.push((buf[0], buf[5..5 + len].to_vec()));
        buf.drain(..5 + len);
    }
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    wrote_stdin: bool,
}

/// The attach side of a shim.
pub struct Attach {
    listener: UnixListener,
    clients: Vec<Client>,
    /// The container's stdin (a pipe, or the terminal), None once closed.
    stdin: Option<File>,
    /// The terminal, for window sizes.
    terminal: Option<OwnedFd>,
    stdin_once: bool,
}

impl Attach {
    /// Listens on `attach.sock` in the current directory (the container's: its full path may be
    /// longer than a socket address takes).
    pub fn listen(stdin: Option<OwnedFd>, terminal: Option<OwnedFd>, stdin_once: bool) -> std::io::Result<Attach> {
        let _ = std::fs::remove_file(SOCKET);
        let listener = UnixListener::bind(SOCKET)?;
        listener.set_nonblocking(true)?;
        Ok(Attach { listener, clients: Vec::new(), stdin: stdin.map(File::from), terminal, stdin_once })
    }

    /// The descriptors to poll for input: the listener, then each client.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        std::iter::once(self.listener.as_fd()).chain(self.clients.iter().map(|c| c.stream.as_fd())).collect()
    }

    /// Handles readiness of the descriptors [`Attach::fds`] returned (same order).
    pub fn ready(&mut self, ready: &[bool]) {
        if ready.first() == Some(&true) {
            while let Ok((stream, _)) = self.listener.accept() {
                if stream.set_nonblocking(true).is_ok() {
                    self.clients.push(Client { stream, inbuf: Vec::new(), wrote_stdin: false });
                }
            }
        }
        let mut gone = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        for (i, is_ready) in ready.iter().skip(1).enumerate() {
            if !is_ready || i >= self.clients.len() {
                continue;
            }
            loop {
                match self.clients[i].stream.read(&mut buf) {
                    Ok(0) => {
                        gone.push(i);
                        break;
                    }
                    Ok(n) => self.clients[i].inbuf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        gone.push(i);
                        break;
                    }
                }
            }
            match take_messages(&mut self.clients[i].inbuf) {
                Ok(msgs) => {
                    for (kind, data) in msgs {
                        self.handle_message(i, kind, &data);
                    }
                }
                Err(_) => gone.push(i),
            }
        }
        gone.sort_unstable();
        gone.dedup();
        for i in gone.into_iter().rev() {
            let c = self.clients.remove(i);
            if self.stdin_once && c.wrote_stdin {
                self.stdin = None;
            }
        }
    }

    fn handle_message(&mut self, i: usize, kind: u8, data: &[u8]) {
        match kind {
            STDIN => {
                self.clients[i].wrote_stdin = true;
                if let Some(f) = self.stdin.as_mut() {
                    if f.write_all(data).is_err() {
                        self.stdin = None;
                    }
                }
            }
            STDIN_CLOSE => {
                self.clients[i].wrote_stdin = true;
                if self.stdin_once {
                    self.stdin = None;
                }
            }
            RESIZE => {
                if let (Some(t), [c1, c2, r1, r2]) = (&self.terminal, data) {
                    let ws = libc::winsize {
                        ws_col: u16::from_be_bytes([*c1, *c2]),
                        ws_row: u16::from_be_bytes([*r1, *r2]),
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
                    unsafe { libc::ioctl(t.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                }
            }
            _ => {}
        }
    }

    /// Sends output to every client; a client that cannot take it at once is dropped.
    pub fn output(&mut self, kind: u8, data: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        let msg = message(kind, data);
        let stdin_once = self.stdin_once;
        let mut close_stdin = false;
        self.clients.retain_mut(|c| {
            let ok = write_all_nonblocking(&mut c.stream, &msg);
            if !ok && stdin_once && c.wrote_stdin {
                close_stdin = true;
            }
            ok
        });
        if close_stdin {
            self.stdin = None;
        }
    }
}

/// Writes all of `msg`, waiting a little for a full socket buffer; false if it could not.
fn write_all_nonblocking(s: &mut UnixStream, mut msg: &[u8]) -> bool {
    let mut spins = 0;
    while !msg.is_empty() {
        match s.write(msg) {
            Ok(0) => return false,
            Ok(n) => msg = &msg[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock && spins < 200 => {
                spins += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_framed() {
        let mut buf = message(STDIN, b"ls\n");
        buf.extend(message(RESIZE, &[0, 80, 0, 24]));
        buf.extend_from_slice(&message(STDOUT, b"partial")[..6]);
        let msgs = take_messages(&mut buf).expect("messages");
        assert_eq!(msgs, vec![(STDIN, b"ls\n".to_vec()), (RESIZE, vec![0, 80, 0, 24])]);
        assert_eq!(buf.len(), 6, "the partial message waits");
        let mut huge = vec![STDIN, 0xff, 0xff, 0xff, 0xff];
        assert!(take_messages(&mut huge).is_err());
    }
}
