//! A Pod's port on the sandbox network: a listener on `<podIP>:<containerPort>`
//! inside the sandbox's network namespace whose connections are spliced to a
//! process listening on loopback. So a Service, an EndpointSlice or anything
//! that dials the Pod IP (the API server calling a webhook with aggregator
//! routing, a simulated gateway) reaches the process, as on a cluster.
//!
//! Only addresses of the namespace are listened on and only the loopback
//! target is dialled.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::network::bind_in_namespace;

/// A live forward from a Pod address to a loopback port; dropping it closes
/// the listener and the connections it spliced.
#[derive(Debug)]
pub struct PodPort {
    pub listen: SocketAddrV4,
    pub target: SocketAddr,
    task: JoinHandle<()>,
}

impl PodPort {
    /// Listens on `listen` inside `netns` and splices each connection to
    /// `target`, which must be a loopback address. A connection whose target
    /// refuses (the process is restarting) is closed at once.
    /// Needs a Tokio runtime.
    pub fn open(netns: &str, listen: SocketAddrV4, target: SocketAddr) -> io::Result<PodPort> {
        if !target.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pod port {listen}: target {target} is not a loopback address"),
            ));
        }
        let listener = bind_in_namespace(netns, listen.into())?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let task = tokio::spawn(accept_loop(listener, target));
        Ok(PodPort { listen, target, task })
    }
}

impl Drop for PodPort {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((inbound, _)) => {
                    connections.spawn(splice(inbound, target));
                }
                // Out of descriptors and the like: wait rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn splice(mut inbound: TcpStream, target: SocketAddr) {
    let Ok(mut outbound) = TcpStream::connect(target).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_loopback_targets_are_dialled() {
        let listen = SocketAddrV4::new(std::net::Ipv4Addr::new(198, 18, 1, 1), 8080);
        let target: SocketAddr = "198.18.1.2:8080".parse().unwrap();
        let error = PodPort::open("unused", listen, target).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
    }
}
