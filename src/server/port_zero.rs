//! Listen addresses with port 0 (the kernel picks a free port, as tests
//! do). pingora binds its listeners itself and does not say which port it
//! got, so `serve` binds such an address here, logs the real address, and
//! hands the socket to pingora through its listen-fd table: the table it
//! fills for zero-downtime upgrades, from which a listener takes the socket
//! for its address instead of binding one.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::IntoRawFd;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{ListenFds, RuntimeOpts, ShutdownWatch};
use pingora::services::{ServiceReadyNotifier, ServiceWithDependents};

/// The address to give pingora for `address`, with the socket bound for it
/// when its port is 0 (the bound address then has the real port).
pub fn bind(address: SocketAddr) -> std::io::Result<(SocketAddr, Option<TcpListener>)> {
    if address.port() != 0 {
        return Ok((address, None));
    }
    let socket = TcpListener::bind(address)
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .map_err(|e| std::io::Error::new(e.kind(), format!("{address}: {e}")))?;
    let bound = socket.local_addr()?;
    Ok((bound, Some(socket)))
}

/// A pingora service whose listeners bound by [`bind`] are put into the
/// listen-fd table, under their bound address, just before it starts.
pub struct PreBound<S> {
    pub service: S,
    pub sockets: Vec<(String, TcpListener)>,
}

#[async_trait]
impl<S: ServiceWithDependents> ServiceWithDependents for PreBound<S> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
        ready_notifier: ServiceReadyNotifier,
    ) {
        if let Some(fds) = &fds {
            let mut table = fds.lock();
            for (address, socket) in self.sockets.drain(..) {
                table.add(address, socket.into_raw_fd());
            }
        }
        self.service
            .start_service(fds, shutdown, listeners_per_fd, ready_notifier)
            .await
    }

    fn name(&self) -> &str {
        self.service.name()
    }

    fn threads(&self) -> Option<usize> {
        self.service.threads()
    }

    fn runtime_opts_override(&self, global: &RuntimeOpts) -> Option<RuntimeOpts> {
        self.service.runtime_opts_override(global)
    }

    fn on_startup_delay(&self, time_waited: Duration) {
        self.service.on_startup_delay(time_waited)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        self.service.listen_addresses()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_is_bound_here_and_other_ports_are_left_to_pingora() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        let (address, socket) = bind(addr("127.0.0.1:0")).expect("bind");
        let socket = socket.expect("a socket for port 0");
        assert_eq!(socket.local_addr().expect("addr"), address);
        assert_ne!(address.port(), 0);
        let (address, socket) = bind(addr("127.0.0.1:9000")).expect("no bind");
        assert_eq!(address, addr("127.0.0.1:9000"));
        assert!(socket.is_none());
    }
}
