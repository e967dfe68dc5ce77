// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Test-only stand-ins for Polymarket's exchanges: they emit `OrderFilled` with exactly the real
/// event signatures (names, types, indexed flags), so topic0 and the data layout match mainnet.
/// They hold no state and check nothing; anyone may emit anything. Never deploy outside tests.

/// Any log at all, for logs the real exchanges also emit (OrdersMatched, FeeCharged) and for
/// malformed shapes (wrong topic count, short data) that a decoder must dead-letter.
abstract contract RawLogEmitter {
    struct RawLog {
        bytes32[] topics; // 0..4
        bytes data;
    }

    /// Emits every log in order, in this one transaction, from this contract's address.
    function emitRaw(RawLog[] calldata logs) external {
        for (uint256 i = 0; i < logs.length; i++) {
            bytes32[] calldata t = logs[i].topics;
            bytes memory d = logs[i].data;
            uint256 n = t.length;
            require(n <= 4, "at most 4 topics");
            assembly {
                let p := add(d, 32)
                let len := mload(d)
                switch n
                case 0 { log0(p, len) }
                case 1 { log1(p, len, calldataload(t.offset)) }
                case 2 { log2(p, len, calldataload(t.offset), calldataload(add(t.offset, 32))) }
                case 3 {
                    log3(p, len, calldataload(t.offset), calldataload(add(t.offset, 32)),
                        calldataload(add(t.offset, 64)))
                }
                default {
                    log4(p, len, calldataload(t.offset), calldataload(add(t.offset, 32)),
                        calldataload(add(t.offset, 64)), calldataload(add(t.offset, 96)))
                }
            }
        }
    }
}

/// CTF Exchange V1 (history up to 2026-04-28).
/// topic0 0xd0a08e8c493f9c94f29311604c9de1b4e8c8d4c06bd0c789af57f2d65bfec0f6
contract V1FillEmitter is RawLogEmitter {
    event OrderFilled(
        bytes32 indexed orderHash,
        address indexed maker,
        address indexed taker,
        uint256 makerAssetId,
        uint256 takerAssetId,
        uint256 makerAmountFilled,
        uint256 takerAmountFilled,
        uint256 fee
    );

    struct Fill {
        bytes32 orderHash;
        address maker;
        address taker;
        uint256 makerAssetId;
        uint256 takerAssetId;
        uint256 makerAmountFilled;
        uint256 takerAmountFilled;
        uint256 fee;
    }

    function emitFill(Fill calldata f) public {
        emit OrderFilled(f.orderHash, f.maker, f.taker, f.makerAssetId, f.takerAssetId, f.makerAmountFilled,
            f.takerAmountFilled, f.fee);
    }

    /// Several fills in one transaction (consecutive log indexes), as a real match produces.
    function emitFills(Fill[] calldata fills) external {
        for (uint256 i = 0; i < fills.length; i++) {
            emitFill(fills[i]);
        }
    }
}

/// CTF Exchange V2 and V3 (same event).
/// topic0 0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee
contract V2FillEmitter is RawLogEmitter {
    event OrderFilled(
        bytes32 indexed orderHash,
        address indexed maker,
        address indexed taker,
        uint8 side,
        uint256 tokenId,
        uint256 makerAmountFilled,
        uint256 takerAmountFilled,
        uint256 fee,
        bytes32 builder,
        bytes32 metadata
    );

    struct Fill {
        bytes32 orderHash;
        address maker;
        address taker;
        uint8 side; // 0 BUY, 1 SELL
        uint256 tokenId;
        uint256 makerAmountFilled;
        uint256 takerAmountFilled;
        uint256 fee;
        bytes32 builder;
        bytes32 metadata;
    }

    function emitFill(Fill calldata f) public {
        emit OrderFilled(f.orderHash, f.maker, f.taker, f.side, f.tokenId, f.makerAmountFilled,
            f.takerAmountFilled, f.fee, f.builder, f.metadata);
    }

    /// Several fills in one transaction (consecutive log indexes), as a real match produces.
    function emitFills(Fill[] calldata fills) external {
        for (uint256 i = 0; i < fills.length; i++) {
            emitFill(fills[i]);
        }
    }
}
