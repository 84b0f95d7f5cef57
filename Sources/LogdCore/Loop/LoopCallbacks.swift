import CLibUV
import LogdSystem

// Every @convention(c) callback of the daemon lives here. Each recovers its owner from the
// handle's `data` pointer and calls one Swift method. Connection handles hold a retained
// reference, released once in `connectionClosed`; the server's own handles hold an unretained
// one (the server outlives its loop).

func serverOf(_ handle: UnsafeMutableRawPointer?) -> Server {
    Unmanaged<Server>.fromOpaque(handle!.assumingMemoryBound(to: uv_handle_t.self).pointee.data).takeUnretainedValue()
}

let c_listenerReadable: uv_poll_cb = { handle, status, _ in
    serverOf(UnsafeMutableRawPointer(handle)).acceptReady(status: status)
}

let c_connectionEvent: uv_poll_cb = { handle, status, events in
    let conn = Unmanaged<ConnectionBox>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
    conn.server?.connectionEvent(conn.connection, status: status, events: events)
}

let c_connectionClosed: uv_close_cb = { handle in
    let box = Unmanaged<ConnectionBox>.fromOpaque(handle!.pointee.data).takeRetainedValue()
    box.server?.connectionClosed(box.connection)
    handle!.withMemoryRebound(to: uv_poll_t.self, capacity: 1) { $0.deallocate() }
}

let c_writerDoor: uv_async_cb = { handle in
    serverOf(UnsafeMutableRawPointer(handle)).drainDoor()
}

let c_maintenanceTick: uv_timer_cb = { handle in
    serverOf(UnsafeMutableRawPointer(handle)).tick()
}

let c_signalReceived: uv_signal_cb = { handle, signum in
    serverOf(UnsafeMutableRawPointer(handle)).signalReceived(signum)
}

let c_serverHandleClosed: uv_close_cb = { handle in
    handle!.deallocate()
}

/// What a connection's poll handle points at: the connection and a weak way back to the server.
final class ConnectionBox {
    let connection: Connection
    weak var server: Server?
    init(_ connection: Connection, _ server: Server) {
        self.connection = connection
        self.server = server
    }
}
