#if canImport(Glibc)
    import Glibc
#endif
import Wire
import LogdSystem

/// A blocking client connection to logd, for logctl and tools (not the SDK's hot path).
public final class WireSocket {
    public enum Failure: Error, CustomStringConvertible {
        /// Nothing listens on the socket (missing file or connection refused).
        case daemonNotRunning(path: String, reason: String)
        case io(String)
        case timedOut
        case closed
        case protocolError(String)

        public var description: String {
            switch self {
            case .daemonNotRunning(let path, let reason): "logd is not running on \(path) (\(reason))"
            case .io(let s): s
            case .timedOut: "timed out waiting for logd"
            case .closed: "logd closed the connection"
            case .protocolError(let s): "protocol error: \(s)"
            }
        }
    }

    public let fd: Int32
    private var decoder = StreamDecoder(decoder: FrameDecoder(limits: WireLimits(maxFrameBytes: 64 << 20)))

    public init(path: String) throws(Failure) {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw .io("\(SystemError("socket"))") }
        guard var addr = UnixAddress.make(path) else {
            close(s)
            throw .io("socket path too long (\(path.utf8.count) bytes, limit 107): \(path)")
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let e = errno
            close(s)
            if e == ENOENT || e == ECONNREFUSED || e == ENOTDIR {
                throw .daemonNotRunning(path: path, reason: String(cString: strerror(e)))
            }
            throw .io("connect(\(path)): \(String(cString: strerror(e)))")
        }
        fd = s
    }

    deinit { close(fd) }

    public func send(_ records: [Record]) throws(Failure) {
        var out: [UInt8] = []
        for r in records {
            do { try FrameEncoder().encode(r, into: &out) } catch { throw .protocolError(error.description) }
        }
        try sendBytes(out)
    }

    public func sendBytes(_ bytes: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw errno == EPIPE || errno == ECONNRESET ? .closed : .io("\(SystemError("send"))")
            }
            offset += n
        }
    }

    /// The next record from logd, waiting at most `timeoutMs` (-1: forever); nil on timeout
    /// when `nilOnTimeout`, else `.timedOut`.
    public func receive(timeoutMs: Int32) throws(Failure) -> Record {
        let deadline = timeoutMs < 0 ? Int64.max : Posix.monotonicNanos() + Int64(timeoutMs) * 1_000_000
        while true {
            do {
                if let r = try decoder.next() { return r }
            } catch {
                throw .protocolError(error.description)
            }
            let now = Posix.monotonicNanos()
            if now >= deadline { throw .timedOut }
            let wait = deadline == .max ? -1 : Int32(min(Int64(Int32.max), (deadline - now) / 1_000_000 + 1))
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&p, 1, wait)
            if rc < 0 {
                if errno == EINTR { continue }
                throw .io("\(SystemError("poll"))")
            }
            if rc == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { throw .closed }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw errno == ECONNRESET ? .closed : .io("\(SystemError("recv"))")
            }
            decoder.feed(chunk[0..<n])
        }
    }

    /// Records already received, without waiting.
    public func receiveAvailable() throws(Failure) -> [Record] {
        var out: [Record] = []
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) == 1 else { break }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n == 0 { throw .closed }
            if n < 0 { break }
            decoder.feed(chunk[0..<n])
        }
        do {
            while let r = try decoder.next() { out.append(r) }
        } catch {
            throw .protocolError(error.description)
        }
        return out
    }
}

/// logctl's side of the control protocol (docs/CONTROL_PROTOCOL.md).
public final class ControlClient {
    let socket: WireSocket
    private var nextRequest: UInt32 = 1

    public init(path: String) throws(WireSocket.Failure) {
        socket = try WireSocket(path: path)
        try socket.send([
            .hello(Hello(role: .control, pid: UInt32(getpid()), session: .zero, firstSeq: 0, clientName: "logctl", clientVersion: "0.1.0"))
        ])
        let reply = try socket.receive(timeoutMs: 5000)
        switch reply {
        case .welcome: break
        case .error(let e): throw .protocolError(e.message)
        default: throw .protocolError("expected WELCOME, got kind \(reply.kind)")
        }
    }

    /// Sends one request and waits for its reply.
    public func request(_ verb: ControlVerb, _ arguments: Value = .map([]), timeoutMs: Int32 = 30_000) throws(WireSocket.Failure)
        -> ControlReply
    {
        let id = nextRequest
        nextRequest += 1
        try socket.send([.controlRequest(ControlRequest(requestID: id, verb: verb, arguments: arguments))])
        while true {
            let r = try socket.receive(timeoutMs: timeoutMs)
            if case .controlReply(let reply) = r, reply.requestID == id { return reply }
            if case .error(let e) = r { throw .protocolError(e.message) }
        }
    }
}
