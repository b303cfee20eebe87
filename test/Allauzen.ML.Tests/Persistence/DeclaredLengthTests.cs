using System.Buffers.Binary;
using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>Issue #14 row 6: a bridge payload length is checked against the bytes that remain before allocating.</summary>
[TestClass]
public sealed class DeclaredLengthTests
{
    [TestMethod]
    public void PayloadLengthOfArrayMaxLength_FailsBeforeAllocating_NamingComponentAndEntry()
    {
        var ml = new MLContext(seed: 1).UseAllauzen();
        var data = PersistenceFixture.Data(ml);
        var model = PersistenceFixture.Model(ml, data);
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        byte[] forged = NativeBridgeTests.RewriteEntry(stream.ToArray(), "Transform_001", bytes =>
        {
            int payload = bytes.AsSpan().IndexOf("ALZPAYLD"u8); // the int64 length precedes the payload
            Assert.IsGreaterThanOrEqualTo(8, payload, "payload magic not found");
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(payload - 8), Array.MaxLength);
            return bytes;
        });

        var ml2 = new MLContext(seed: 2).UseAllauzen();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml2.Model.Load(new MemoryStream(forged), out _));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        var inner = PersistenceFixture.Innermost(ex);
        Assert.IsInstanceOfType<InvalidDataException>(inner, PersistenceFixture.AllMessages(ex));
        StringAssert.Contains(inner.Message, TestScaleTransformer.Name);
        StringAssert.Contains(inner.Message, $"{Array.MaxLength} bytes");
        StringAssert.Contains(inner.Message, "remain");
        StringAssert.Contains(inner.Message, "Model.key");
        Assert.IsLessThan(256L << 20, allocated, $"allocated {allocated} bytes");
    }

    [TestMethod]
    public void NonSeekableShortStream_FailsAfterReadingWhatItHolds()
    {
        var bytes = new byte[1000];
        using var reader = new BinaryReader(new ForwardOnlyStream(bytes));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => NativeBridge.ReadDeclared(reader, Array.MaxLength, "x.zip", "Comp"));
        Assert.IsLessThan(64L << 20, GC.GetAllocatedBytesForCurrentThread() - before);
        StringAssert.Contains(ex.Message, "'x.zip'");
        StringAssert.Contains(ex.Message, "'Comp'");
        StringAssert.Contains(ex.Message, "found 1000");
    }

    [TestMethod]
    public void NonSeekableStream_ReadsExactlyTheDeclaredBytes()
    {
        var bytes = Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray();
        using var reader = new BinaryReader(new ForwardOnlyStream(bytes));
        CollectionAssert.AreEqual(bytes[..4000], NativeBridge.ReadDeclared(reader, 4000, "x", "C"));
    }

    private sealed class ForwardOnlyStream(byte[] data) : Stream
    {
        private readonly MemoryStream _inner = new(data);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 300));

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
