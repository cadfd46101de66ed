//! The embedded DNS server of one sandbox: a hickory `Server` on port 53 of the sandbox
//! namespace (so on the network's gateway address, which containers get as their
//! nameserver), answering cluster names from the pushed directory and relaying the rest
//! to the node's upstream resolvers from the node's own namespace.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, Message, Metadata, ResponseCode};
use hickory_server::proto::rr::{rdata::A, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use nix::sched::{setns, CloneFlags};
use swarmr_proto::DiscoveryNetwork;
use tokio::sync::watch;
use tracing::debug;

use super::error::DiscoveryError;
use super::names::{resolve, Answer};
use crate::metrics::DnsAnswer;

/// Cluster answers change with every task change: resolvers must not cache them.
const TTL: u32 = 0;
/// How long one upstream resolver gets before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle TCP connections are closed after this.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// The pushed directory, shared by every listener of the node.
pub type Directory = watch::Receiver<Arc<Vec<DiscoveryNetwork>>>;

/// Answers the queries arriving on one network's sandbox.
pub struct Handler {
    network_id: String,
    directory: Directory,
    upstreams: Arc<Vec<SocketAddr>>,
}

/// A running server; dropping it stops it (the server's tasks live in its join set).
pub struct Listener {
    _server: Server<Handler>,
    /// The inode of the sandbox namespace it was bound in: a sandbox recreated under the
    /// same name is a new namespace, and the listener must follow it.
    pub netns_inode: u64,
}

/// The inode of a bind-mounted namespace, `None` if it does not exist.
pub fn netns_inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Binds UDP and TCP port 53 inside the namespace at `netns` and serves `handler` there.
/// The sockets are made on a short-lived thread that entered the namespace; a socket
/// stays in the namespace it was made in, whichever thread uses it afterwards.
pub async fn serve_in(netns: &Path, handler: Handler) -> Result<Listener, DiscoveryError> {
    let bind_err = |source| DiscoveryError::BindDns {
        netns: netns.display().to_string(),
        source,
    };
    let file = File::open(netns).map_err(bind_err)?;
    let netns_inode = file.metadata().map_err(bind_err)?.ino();
    let (udp, tcp) = std::thread::spawn(move || -> std::io::Result<_> {
        setns(&file, CloneFlags::CLONE_NEWNET)?;
        let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 53));
        let udp = std::net::UdpSocket::bind(any)?;
        let tcp = std::net::TcpListener::bind(any)?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        Ok((udp, tcp))
    })
    .join()
    .map_err(|_| bind_err(std::io::Error::other("namespace thread panicked")))?
    .map_err(bind_err)?;
    let mut server = Server::new(handler);
    server.register_socket(tokio::net::UdpSocket::from_std(udp).map_err(bind_err)?);
    let tcp = tokio::net::TcpListener::from_std(tcp).map_err(bind_err)?;
    server.register_listener(tcp, TCP_TIMEOUT, 64);
    Ok(Listener {
        _server: server,
        netns_inode,
    })
}

impl Handler {
    pub fn new(network_id: String, directory: Directory, upstreams: Arc<Vec<SocketAddr>>) -> Self {
        Self {
            network_id,
            directory,
            upstreams,
        }
    }

    /// The raw reply of the first upstream resolver that answers the raw query.
    async fn forward(&self, query: &[u8]) -> Option<Message> {
        for upstream in self.upstreams.iter() {
            let local = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
            let Ok(socket) = tokio::net::UdpSocket::bind(local).await else {
                continue;
            };
            let exchange = async {
                socket.send_to(query, upstream).await?;
                let mut buf = vec![0u8; 4096];
                loop {
                    let (len, from) = socket.recv_from(&mut buf).await?;
                    if from == *upstream {
                        return Ok::<_, std::io::Error>(buf[..len].to_vec());
                    }
                }
            };
            match tokio::time::timeout(UPSTREAM_TIMEOUT, exchange).await {
                Ok(Ok(reply)) => match Message::from_vec(&reply) {
                    Ok(message) => return Some(message),
                    Err(e) => debug!(%upstream, error = %e, "undecodable upstream reply"),
                },
                Ok(Err(e)) => debug!(%upstream, error = %e, "upstream resolver failed"),
                Err(_) => debug!(%upstream, "upstream resolver timed out"),
            }
        }
        None
    }
}

fn response_info(metadata: Metadata) -> ResponseInfo {
    ResponseInfo::from(Header {
        metadata,
        counts: Default::default(),
    })
}

/// What goes back for one query, before it is framed for the asker.
#[derive(Default)]
struct Reply {
    code: ResponseCode,
    /// Set for cluster names: this server is their authority.
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl Reply {
    fn code(code: ResponseCode, authoritative: bool) -> Self {
        Reply {
            code,
            authoritative,
            ..Default::default()
        }
    }
}

impl Handler {
    async fn reply(&self, request: &Request) -> (Reply, DnsAnswer) {
        let (query, source) = match (request.request_info(), request.src().ip()) {
            (Ok(info), IpAddr::V4(source)) => (info.query.clone(), source),
            _ => return (Reply::code(ResponseCode::FormErr, false), DnsAnswer::Failed),
        };
        let directory = self.directory.borrow().clone();
        match resolve(
            &directory,
            &self.network_id,
            source,
            &query.name().to_string(),
        ) {
            Answer::Records(addrs) => {
                let name = query.original().name().clone();
                // Cluster names have A records only: other types get an empty NOERROR.
                let answers = if query.query_type() == RecordType::A {
                    addrs
                        .into_iter()
                        .map(|ip| Record::from_rdata(name.clone(), TTL, RData::A(A(ip))))
                        .collect()
                } else {
                    Vec::new()
                };
                let reply = Reply {
                    answers,
                    ..Reply::code(ResponseCode::NoError, true)
                };
                (reply, DnsAnswer::Cluster)
            }
            Answer::NxDomain => (
                Reply::code(ResponseCode::NXDomain, true),
                DnsAnswer::NxDomain,
            ),
            Answer::Forward => match self.forward(request.as_slice()).await {
                Some(upstream) => {
                    let reply = Reply {
                        code: upstream.metadata.response_code,
                        authoritative: false,
                        answers: upstream.answers,
                        authorities: upstream.authorities,
                        additionals: upstream.additionals,
                    };
                    (reply, DnsAnswer::Forwarded)
                }
                None => (
                    Reply::code(ResponseCode::ServFail, false),
                    DnsAnswer::Failed,
                ),
            },
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let started = std::time::Instant::now();
        let (reply, answer) = self.reply(request).await;
        let record_type = request.request_info().map_or("other", |info| {
            crate::metrics::dns_type_label(info.query.query_type().into())
        });
        crate::metrics::dns_answered(answer, record_type, started.elapsed());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        metadata.authoritative = reply.authoritative;
        metadata.response_code = reply.code;
        let message = MessageResponseBuilder::from_message_request(request).build(
            metadata,
            &reply.answers,
            &reply.authorities,
            [],
            &reply.additionals,
        );
        response.send_response(message).await.unwrap_or_else(|e| {
            debug!(error = %e, "could not send a DNS response");
            response_info(metadata)
        })
    }
}
