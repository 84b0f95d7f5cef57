#if canImport(Glibc)
    import Glibc
#endif
import CCurl

/// One libcurl easy handle (keeps its connection alive between requests). Used by the
/// forwarder thread only.
package final class HTTP {
    package struct Response {
        package var status: Int
        package var body: [UInt8]
        package var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// A request that got no HTTP answer (connection refused or reset, timeout, DNS, TLS).
    package struct TransportError: Error, CustomStringConvertible {
        package var description: String
    }

    private let handle: UnsafeMutableRawPointer
    private let settings: ForwardSettings
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    nonisolated(unsafe) private static var initialized = false

    package init(settings: ForwardSettings) {
        if !HTTP.initialized {
            curl_global_init(Int(CURL_GLOBAL_DEFAULT))
            HTTP.initialized = true
        }
        handle = curl_easy_init()
        self.settings = settings
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    final class Sink {
        var bytes: [UInt8] = []
    }

    /// Sends one request. `body` is sent as JSON; `uploadPath` streams a file as the body (PUT).
    package func request(_ method: String, _ url: String, body: [UInt8]? = nil, uploadPath: String? = nil) throws(TransportError)
        -> Response
    {
        let h = handle
        curl_easy_reset(h)
        errorBuffer[0] = 0
        let sink = Sink()
        let sinkRef = Unmanaged.passRetained(sink)
        defer { sinkRef.release() }
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(headers) }
        var file: UnsafeMutablePointer<FILE>? = nil
        defer { if let file { fclose(file) } }

        _ = logd_curl_setopt_str(h, CURLOPT_URL, url)
        _ = logd_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = logd_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, 10_000)
        // A stalled transfer (no byte for 60 s) is a transport error, whatever its size.
        _ = logd_curl_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, 1)
        _ = logd_curl_setopt_long(h, CURLOPT_LOW_SPEED_TIME, 60)
        _ = logd_curl_setopt_ptr(h, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = logd_curl_setopt_write(h) { data, size, count, user in
            let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            if let data, n > 0 {
                data.withMemoryRebound(to: UInt8.self, capacity: n) { sink.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: n)) }
            }
            return n
        }
        _ = logd_curl_setopt_ptr(h, CURLOPT_WRITEDATA, sinkRef.toOpaque())
        headers = curl_slist_append(headers, "Accept: application/json")
        if let token = settings.token, !token.isEmpty {
            headers = curl_slist_append(headers, "Authorization: Bearer \(token)")
        } else if let user = settings.username, !user.isEmpty {
            _ = logd_curl_setopt_str(h, CURLOPT_USERNAME, user)
            _ = logd_curl_setopt_str(h, CURLOPT_PASSWORD, settings.password ?? "")
            _ = logd_curl_setopt_long(h, CURLOPT_HTTPAUTH, 1)  // CURLAUTH_BASIC (a macro Swift cannot import)
        }
        if settings.insecureTLS {
            _ = logd_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 0)
            _ = logd_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 0)
        }
        if let ca = settings.serverCertPath, !ca.isEmpty { _ = logd_curl_setopt_str(h, CURLOPT_CAINFO, ca) }
        if let cert = settings.clientCertPath, !cert.isEmpty {
            _ = logd_curl_setopt_str(h, CURLOPT_SSLCERT, cert)
            _ = logd_curl_setopt_str(h, CURLOPT_SSLKEY, cert)
        }

        var bodyCopy = body ?? Array("{}".utf8)
        let code: CURLcode = bodyCopy.withUnsafeMutableBytes { raw -> CURLcode in
            if let uploadPath {
                guard let f = fopen(uploadPath, "rb") else { return CURLE_READ_ERROR }
                file = f
                var st = stat()
                fstat(fileno(f), &st)
                _ = logd_curl_setopt_long(h, CURLOPT_UPLOAD, 1)
                _ = logd_curl_setopt_ptr(h, CURLOPT_READDATA, UnsafeMutableRawPointer(f))
                _ = logd_curl_setopt_off(h, CURLOPT_INFILESIZE_LARGE, curl_off_t(st.st_size))
                headers = curl_slist_append(headers, "Content-Type: application/octet-stream")
                // No "Expect: 100-continue" round trip per file.
                headers = curl_slist_append(headers, "Expect:")
            } else if body != nil {
                headers = curl_slist_append(headers, "Content-Type: application/json")
                _ = logd_curl_setopt_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(raw.count))
                _ = logd_curl_setopt_ptr(h, CURLOPT_POSTFIELDS, raw.baseAddress)
            }
            if method != "GET" && !(method == "POST" && body != nil) && !(method == "PUT" && uploadPath != nil) {
                _ = logd_curl_setopt_str(h, CURLOPT_CUSTOMREQUEST, method)
            }
            _ = logd_curl_setopt_ptr(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headers))
            return curl_easy_perform(h)
        }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw TransportError(description: text)
        }
        var status = 0
        _ = logd_curl_response_code(h, &status)
        return Response(status: status, body: sink.bytes)
    }

    /// `%`-encodes a URL query value or path part (RFC 3986 unreserved bytes kept; `/` kept when
    /// `keepSlash`).
    package static func escape(_ s: String, keepSlash: Bool = false) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E: out.unicodeScalars.append(Unicode.Scalar(b))
            case 0x2F where keepSlash: out += "/"
            default:
                let h = String(b, radix: 16, uppercase: true)
                out += "%" + (h.count == 1 ? "0" : "") + h
            }
        }
        return out
    }
}
