@_spi(Tools) import WasmUnwind

// The stack-map table's binary form: a section of captured stacks and of
// the post-mortem image (docs/capture-format.md).

extension StackMapTable {
    /// The binary form (also a section of captured stacks):
    ///
    /// ```
    /// uleb  map count M
    /// M x { uleb frameSize/8, uleb bitmap word count W, W x u64 bitmap word }
    /// uleb  entry count N
    /// N x { uleb offset delta (from the previous offset; the first from 0),
    ///       uleb map index }
    /// ```
    ///
    /// A call site costs two or three bytes; the maps are shared.
    public func serialized() -> [UInt8] {
        var writer = ByteWriter()
        write(to: &writer)
        return writer.bytes
    }

    public func write(to writer: inout ByteWriter) {
        writer.writeULEB(UInt64(maps.count))
        for map in maps {
            writer.writeULEB(UInt64(map.frameSize / 8))
            writer.writeULEB(UInt64(map.bitmap.count))
            for word in map.bitmap { writer.write(word) }
        }
        writer.writeULEB(UInt64(count))
        var previous: UInt32 = 0
        for (offset, index) in zip(offsets, mapIndices) {
            writer.writeULEB(UInt64(offset - previous))
            writer.writeULEB(UInt64(index))
            previous = offset
        }
    }

    /// Reads the binary form, checking every count against the bytes left
    /// and every offset and index against the rules (sorted, distinct, in
    /// range, slots inside their frames).
    public init(reading reader: inout ByteReader, codeSize: UInt32 = .max) throws(ByteFormatError) {
        // A map takes at least two bytes, an entry at least two.
        let mapCount = try reader.readULEB("stack map count", atMost: reader.remaining / 2)
        var maps: [StackMap] = []
        maps.reserveCapacity(mapCount)
        for index in 0..<mapCount {
            let start = reader.offset
            let frameWords = try reader.readULEB("frame size of stack map \(index)", atMost: 1 << 28)
            let wordCount = try reader.readULEB("bitmap length of stack map \(index)", atMost: reader.remaining / 8)
            var bitmap: [UInt64] = []
            for _ in 0..<wordCount { bitmap.append(try reader.readInteger("bitmap word of stack map \(index)", as: UInt64.self)) }
            let frameSize = UInt32(frameWords * 8)
            if let last = bitmap.last {
                let highestSlot = (bitmap.count - 1) * 64 + (63 - last.leadingZeroBitCount) + 1
                guard last != 0, highestSlot * 8 <= Int(frameSize) else {
                    throw reader.error(at: start, "stack map \(index)'s slots to lie inside its \(frameSize)-byte frame")
                }
            }
            maps.append(StackMap(frameSize: frameSize, bitmap: bitmap))
        }
        let entryCount = try reader.readULEB("stack map entry count", atMost: reader.remaining / 2)
        var offsets: [UInt32] = []
        var indices: [UInt32] = []
        offsets.reserveCapacity(entryCount)
        indices.reserveCapacity(entryCount)
        var previous: UInt64 = 0
        for entry in 0..<entryCount {
            let start = reader.offset
            let delta = try reader.readULEB("offset delta of stack map entry \(entry)")
            guard entry == 0 || delta > 0 else { throw reader.error(at: start, "stack map entry \(entry)'s offset to increase") }
            previous += delta
            guard previous < UInt64(codeSize) else {
                throw reader.error(at: start, "stack map entry \(entry)'s offset \(previous) to lie inside \(codeSize) bytes of code")
            }
            guard mapCount > 0 else { throw reader.error(at: start, "a stack map for entry \(entry), but there are none") }
            let index = try reader.readULEB("map index of stack map entry \(entry)", atMost: mapCount - 1)
            offsets.append(UInt32(previous))
            indices.append(UInt32(index))
        }
        self.init(validatedOffsets: offsets, mapIndices: indices, maps: maps, handlerScopes: [])
    }
}

extension StackMapTable {
    /// The handler scopes and which map is in which: appended after the
    /// table in a capture (minor version 2):
    ///
    /// ```
    /// uleb  scope count S
    /// S x { uleb parent + 1 (0: none; a parent comes before its scope),
    ///       uleb clause count n,
    ///       n x { u8 kind, uleb tag, uleb landing pad offset, uleb -payloadSlot / 8 } }
    /// uleb  count H of maps with a scope
    /// H x { uleb map index (increasing), uleb scope index }
    /// ```
    public func writeHandlerScopes(to writer: inout ByteWriter) {
        writer.writeULEB(UInt64(handlerScopes.count))
        for scope in handlerScopes {
            writer.writeULEB(UInt64(scope.parent.map { $0 + 1 } ?? 0))
            writer.writeULEB(UInt64(scope.clauses.count))
            for handler in scope.clauses { Self.write(handler, to: &writer) }
        }
        let withScopes = maps.indices.filter { maps[$0].handlerScope != nil }
        writer.writeULEB(UInt64(withScopes.count))
        for index in withScopes {
            writer.writeULEB(UInt64(index))
            writer.writeULEB(UInt64(maps[index].handlerScope!))
        }
    }

    static func write(_ handler: ExceptionHandler, to writer: inout ByteWriter) {
        writer.write(handler.kind.rawValue)
        writer.writeULEB(UInt64(handler.tag))
        writer.writeULEB(UInt64(handler.landingPad))
        writer.writeULEB(UInt64(-Int64(handler.payloadSlot) / 8))
    }

    /// One clause, checked: a known kind, a landing pad inside the code,
    /// a payload slot inside the frames that use it (`frameSize`).
    static func readHandler(from reader: inout ByteReader, _ what: String, codeSize: UInt32,
                            frameSize: UInt32) throws(ByteFormatError) -> ExceptionHandler {
        let kindOffset = reader.offset
        let raw = try reader.readUInt8("kind of \(what)")
        guard let kind = ExceptionHandler.Kind(rawValue: raw) else {
            throw reader.error(at: kindOffset, "\(what) to be catch, catch_ref, catch_all or catch_all_ref (0-3), found \(raw)")
        }
        let tag = try reader.readULEB("tag of \(what)", atMost: Int(UInt32.max))
        let padOffset = reader.offset
        let pad = try reader.readULEB("landing pad of \(what)", atMost: Int(UInt32.max))
        guard pad < Int(codeSize) else {
            throw reader.error(at: padOffset, "\(what)'s landing pad \(pad) to lie inside \(codeSize) bytes of code")
        }
        let slotOffset = reader.offset
        let words = try reader.readULEB("payload slot of \(what)", atMost: 1 << 28)
        guard words >= 1, words * 8 <= Int(frameSize) else {
            throw reader.error(at: slotOffset, "\(what)'s payload slot fp-\(words * 8) to lie inside its \(frameSize)-byte frame")
        }
        return ExceptionHandler(kind: kind, tag: UInt32(tag), landingPad: UInt32(pad), payloadSlot: -Int32(words * 8))
    }

    /// This table with the handler scopes read from `reader` (the form
    /// `writeHandlerScopes` writes), each checked: parents before their
    /// scopes, maps and scopes that exist, each clause's payload slot
    /// inside the frame of every map whose chain reaches it.
    public func readingHandlerScopes(from reader: inout ByteReader, codeSize: UInt32 = .max) throws(ByteFormatError) -> StackMapTable {
        // A scope takes at least two bytes.
        let scopeCount = try reader.readULEB("handler scope count", atMost: reader.remaining / 2)
        var scopes: [HandlerScope] = []
        // The deepest payload slot of each scope's chain (bytes below fp):
        // each map's frame must hold it.
        var deepest: [Int] = []
        scopes.reserveCapacity(scopeCount)
        for index in 0..<scopeCount {
            let parent = try reader.readULEB("parent of handler scope \(index)", atMost: index)
            let count = try reader.readULEB("clause count of handler scope \(index)", atMost: reader.remaining / 4)
            var clauses: [ExceptionHandler] = []
            for clause in 0..<count {
                clauses.append(try Self.readHandler(from: &reader, "clause \(clause) of handler scope \(index)", codeSize: codeSize,
                                                    frameSize: 1 << 31))
            }
            deepest.append(max(clauses.map { -Int($0.payloadSlot) }.max() ?? 0, parent == 0 ? 0 : deepest[parent - 1]))
            scopes.append(HandlerScope(clauses: clauses, parent: parent == 0 ? nil : parent - 1))
        }
        var maps = self.maps
        let count = try reader.readULEB("count of stack maps with handler scopes", atMost: maps.count)
        var previous: Int?
        for position in 0..<count {
            let start = reader.offset
            let index = try reader.readULEB("map index of scope entry \(position)", atMost: max(0, maps.count - 1))
            guard !maps.isEmpty, previous.map({ index > $0 }) ?? true else {
                throw reader.error(at: start, "scope entry \(position) to name a stack map after the previous one")
            }
            previous = index
            let scopeOffset = reader.offset
            guard !scopes.isEmpty else { throw reader.error(at: scopeOffset, "a handler scope for stack map \(index), but there are none") }
            let scope = try reader.readULEB("scope of stack map \(index)", atMost: scopes.count - 1)
            // Every clause the chain reaches writes into this map's frame.
            guard deepest[scope] <= Int(maps[index].frameSize) else {
                throw reader.error(at: scopeOffset, "the payload slots of handler scope \(scope) and its parents (down to fp-\(deepest[scope])) to lie inside the \(maps[index].frameSize)-byte frame of stack map \(index)")
            }
            maps[index].handlerScope = scope
        }
        return StackMapTable(validatedOffsets: offsets, mapIndices: mapIndices, maps: maps, handlerScopes: scopes)
    }

    /// Whether a capture writes the handlers after the table: when a map
    /// has a scope, or when there are scopes at all (a reader accepts scopes
    /// no map names; they are written back so what was read round-trips).
    public var hasHandlerSection: Bool { hasHandlers || !handlerScopes.isEmpty }

    /// Whether the scopes are what reading the form of minor version 1
    /// makes (each map with handlers has a scope of its own, without a
    /// parent, in map order): then that form holds them exactly.
    public var hasPerMapHandlers: Bool {
        let withScopes = maps.compactMap(\.handlerScope)
        return withScopes == Array(handlerScopes.indices) && handlerScopes.allSatisfy { $0.parent == nil }
    }

    /// The form of minor version 1 (`hasPerMapHandlers` tables only).
    public func writeHandlers(to writer: inout ByteWriter) {
        let withHandlers = maps.indices.filter { maps[$0].handlerScope != nil }
        writer.writeULEB(UInt64(withHandlers.count))
        for index in withHandlers {
            let handlers = self.handlers(of: maps[index])
            writer.writeULEB(UInt64(index))
            writer.writeULEB(UInt64(handlers.count))
            for handler in handlers { Self.write(handler, to: &writer) }
        }
    }

    /// This table with the handlers read from `reader` in the form of minor
    /// version 1 (captures written before scopes; each map's list becomes a
    /// scope of its own):
    ///
    /// ```
    /// uleb  count H of maps with handlers
    /// H x { uleb map index, uleb handler count n,
    ///       n x { u8 kind, uleb tag, uleb landing pad offset,
    ///             uleb -payloadSlot / 8 } }
    /// ```
    ///
    /// Each is checked: a map that exists, a known kind, a landing pad
    /// inside the code, a slot inside the frame.
    public func readingHandlers(from reader: inout ByteReader, codeSize: UInt32 = .max) throws(ByteFormatError) -> StackMapTable {
        var maps = self.maps
        var scopes: [HandlerScope] = []
        let count = try reader.readULEB("count of stack maps with handlers", atMost: maps.count)
        var previous: Int?
        for position in 0..<count {
            let start = reader.offset
            let index = try reader.readULEB("map index of handler list \(position)", atMost: max(0, maps.count - 1))
            guard !maps.isEmpty, previous.map({ index > $0 }) ?? true else {
                throw reader.error(at: start, "handler list \(position) to name a stack map after the previous one")
            }
            previous = index
            let handlerCount = try reader.readULEB("handler count of stack map \(index)", atMost: reader.remaining / 4)
            var clauses: [ExceptionHandler] = []
            for handler in 0..<handlerCount {
                clauses.append(try Self.readHandler(from: &reader, "handler \(handler) of stack map \(index)", codeSize: codeSize,
                                                    frameSize: maps[index].frameSize))
            }
            maps[index].handlerScope = scopes.count
            scopes.append(HandlerScope(clauses: clauses, parent: nil))
        }
        return StackMapTable(validatedOffsets: offsets, mapIndices: mapIndices, maps: maps, handlerScopes: scopes)
    }
}
