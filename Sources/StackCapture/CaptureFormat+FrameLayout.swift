@_spi(Tools) import WasmUnwind

extension CaptureFile {
    /// Which value each slot of a module's frames holds: every wasm value
    /// lives in a frame slot between instructions (local i at
    /// `fp - 16 - 8i`, operand j below the locals), so each function's
    /// local kinds and each site's operand kinds say what the captured
    /// stack holds — for coredumps with values (`wasm-unwind coredump`).
    /// Kinds are the wasm binary format's value type bytes (0x7F i32, 0x7E
    /// i64, 0x7D f32, 0x7C f64, 0x70 funcref, 0x6F externref, 0x69 exnref).
    ///
    /// FRAME_LAYOUT: uleb module position; uleb function count, then per
    /// function (the MODULE section's order) uleb n, n kind bytes; uleb
    /// call-site count, then per site uleb return-address code offset,
    /// uleb n, n kind bytes (bottom first, the call's arguments on top);
    /// uleb trap-site count, then per site uleb code offset, u8 1 and the
    /// kinds as for a call site, or u8 0 for a site in a prologue (the
    /// frame's values are not in their slots yet).
    public struct FrameLayout: Hashable, Sendable {
        public var locals: [[UInt8]]
        public var callSites: [UInt32: [UInt8]]
        public var trapSites: [UInt32: [UInt8]?]

        public init(locals: [[UInt8]], callSites: [UInt32: [UInt8]], trapSites: [UInt32: [UInt8]?]) {
            self.locals = locals
            self.callSites = callSites
            self.trapSites = trapSites
        }

        static let kinds: Set<UInt8> = [0x7F, 0x7E, 0x7D, 0x7C, 0x70, 0x6F, 0x69]

        func write(to writer: inout ByteWriter, position: Int) {
            writer.writeULEB(UInt64(position))
            writer.writeULEB(UInt64(locals.count))
            for kinds in locals {
                writer.writeULEB(UInt64(kinds.count))
                writer.write(kinds)
            }
            writer.writeULEB(UInt64(callSites.count))
            for (offset, kinds) in callSites.sorted(by: { $0.key < $1.key }) {
                writer.writeULEB(UInt64(offset))
                writer.writeULEB(UInt64(kinds.count))
                writer.write(kinds)
            }
            writer.writeULEB(UInt64(trapSites.count))
            for (offset, kinds) in trapSites.sorted(by: { $0.key < $1.key }) {
                writer.writeULEB(UInt64(offset))
                writer.write(UInt8(kinds == nil ? 0 : 1))
                if let kinds {
                    writer.writeULEB(UInt64(kinds.count))
                    writer.write(kinds)
                }
            }
        }

        static func readKinds(_ reader: inout ByteReader, _ what: String) throws(ByteFormatError) -> [UInt8] {
            let count = try reader.readULEB("the number of \(what)", atMost: reader.remaining)
            let start = reader.offset
            let kinds = Array(try reader.readBytes(count, what))
            if let index = kinds.firstIndex(where: { !Self.kinds.contains($0) }) {
                throw reader.error(at: start + index, "a value type byte (0x7F, 0x7E, 0x7D, 0x7C, 0x70, 0x6F, 0x69), found 0x\(String(kinds[index], radix: 16))")
            }
            return kinds
        }

        static func read(_ reader: inout ByteReader) throws(ByteFormatError) -> (position: Int, layout: FrameLayout) {
            let position = try reader.readULEB("the module's position", atMost: Int(UInt32.max))
            let functions = try reader.readULEB("the function count", atMost: reader.remaining)
            var locals: [[UInt8]] = []
            for function in 0..<functions { locals.append(try readKinds(&reader, "function \(function)'s local kinds")) }
            var callSites: [UInt32: [UInt8]] = [:]
            for _ in 0..<(try reader.readULEB("the call-site count", atMost: reader.remaining / 2)) {
                let offset = UInt32(try reader.readULEB("a call site's return address offset", atMost: Int(UInt32.max)))
                callSites[offset] = try readKinds(&reader, "a call site's operand kinds")
            }
            var trapSites: [UInt32: [UInt8]?] = [:]
            for _ in 0..<(try reader.readULEB("the trap-site count", atMost: reader.remaining / 2)) {
                let offset = UInt32(try reader.readULEB("a trap site's code offset", atMost: Int(UInt32.max)))
                let flagOffset = reader.offset
                switch try reader.readUInt8("a trap site's flag") {
                case 0: trapSites[offset] = .some(nil)
                case 1: trapSites[offset] = try readKinds(&reader, "a trap site's operand kinds")
                case let flag: throw reader.error(at: flagOffset, "a trap site's flag 0 or 1, found \(flag)")
                }
            }
            return (position, FrameLayout(locals: locals, callSites: callSites, trapSites: trapSites))
        }
    }
}
