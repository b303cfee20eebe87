using System.Text;
using Spectre.Console;

namespace Allauzen.ML.Samples.Common;

/// <summary>An <see cref="IProgress{T}"/> that reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool and reorders lines).</summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc/>
    public void Report(T value) => report(value);
}

/// <summary>
/// Progress of long work with an ETA: a Spectre.Console bar when stdout is an interactive terminal (lines the sample
/// prints meanwhile appear above it), plain lines otherwise (CI), at most one per <c>interval</c> and always the last.
/// </summary>
public sealed class ConsoleProgress : IDisposable
{
    private static ConsoleProgress? _active;
    private readonly string _title;
    private readonly double _total;
    private readonly TimeSpan _interval;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TaskCompletionSource _finished = new();
    private readonly TextWriter? _stdout;
    private readonly Task? _render;
    private readonly ProgressTask? _task;
    private readonly Lock _lock = new();
    private TimeSpan _lastPrint = TimeSpan.FromDays(-1);
    private bool _finalPrinted, _disposed;

    /// <summary>Starts reporting <paramref name="title"/> over <paramref name="total"/> units of work.</summary>
    public ConsoleProgress(string title, double total, TimeSpan? interval = null)
    {
        (_title, _total, _interval) = (title, Math.Max(total, 1e-12), interval ?? TimeSpan.Zero);
        if (!Interactive || _active is not null)
            return;
        _active = this;
        _stdout = Console.Out;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(_stdout) });
        using var ready = new ManualResetEventSlim();
        ProgressTask? task = null;
        _render = Task.Run(() => console.Progress().AutoClear(true)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                task = ctx.AddTask(Markup.Escape(title), maxValue: _total);
                ready.Set();
                await _finished.Task;
            }));
        ready.Wait();
        _task = task;
        // What the sample prints while the bar is live goes through Spectre, above the bar.
        Console.SetOut(TextWriter.Synchronized(new LineWriter(line => console.WriteLine(line))));
    }

    /// <summary>True when stdout is a terminal (bars); false when redirected (plain lines).</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Reports <paramref name="done"/> units finished, with a short status (thread-safe).</summary>
    public void Report(double done, string detail = "")
    {
        if (_disposed)
            return; // a component may keep reporting after this piece of work (its progress receiver stays attached)
        if (_task is not null)
        {
            // One line: the bar, percentage, elapsed and remaining columns take about 45 characters.
            string text = detail.Length == 0 ? _title : $"{_title}: {detail}";
            int room = Math.Max(20, AnsiConsole.Profile.Width - 45);
            _task.Description = Markup.Escape(text.Length <= room ? text : text[..(room - 1)] + "…");
            _task.Value = done;
            return;
        }
        var now = _clock.Elapsed;
        lock (_lock)
        {
            bool final = done >= _total && !_finalPrinted;
            if (!final && now - _lastPrint < _interval)
                return;
            _finalPrinted |= final;
            _lastPrint = now;
        }
        string eta = done > 0 ? Format(TimeSpan.FromSeconds(now.TotalSeconds * (_total - done) / done)) : "?";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {_title} {done:0.##}/{_total:0.##}{(detail.Length > 0 ? $": {detail}" : "")} [{Format(now)} elapsed, ETA {eta}]"));
    }

    /// <summary>Training progress, one report per epoch (loss, accuracy, epoch time); the total is the number of epochs.</summary>
    public IProgress<TrainingProgress> Epochs() => new SyncProgress<TrainingProgress>(p => Report(p.Epoch, string.Create(CultureInfo.InvariantCulture,
        $"loss {p.TrainLoss:F4}, train accuracy {p.TrainAccuracy:P2}{(p.ValidationAccuracy is double va ? $", validation accuracy {va:P2}" : "")}, {p.EpochTime.TotalSeconds:F2} s/epoch")));

    /// <inheritdoc/>
    public void Dispose()
    {
        _disposed = true;
        if (_render is null)
            return;
        _finished.TrySetResult();
        _render.Wait();
        Console.SetOut(_stdout!);
        _active = null;
    }

    private static string Format(TimeSpan t) => t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : t.ToString(@"m\:ss", CultureInfo.InvariantCulture);

    /// <summary>Buffers writes into lines and hands each complete line on.</summary>
    private sealed class LineWriter(Action<string> line) : TextWriter
    {
        private readonly StringBuilder _buffer = new();

        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            if (value == '\n')
            {
                line(_buffer.ToString().TrimEnd('\r'));
                _buffer.Clear();
            }
            else
            {
                _buffer.Append(value);
            }
        }
    }
}
