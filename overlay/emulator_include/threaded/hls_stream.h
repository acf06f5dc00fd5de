#ifndef OVERLAY_THREADED_HLS_STREAM_H_
#define OVERLAY_THREADED_HLS_STREAM_H_

// hls::stream for the threaded C-simulation of the accelerator top (g++ only: this folder comes
// before hls4ml's sequential hls_stream.h on the include path; overlay/testbench.py,
// run_threaded_testbench). Written for this project, not Xilinx's header.
//
// Every process of our dataflow regions runs on its own thread (NNET_DATAFLOW in
// nnet_utils/nnet_dataflow.h: joined when the region returns; NNET_FREE_RUNNING3: started at the
// region's first invocation, each process run again and again until the program exits), and a
// stream whose depth our code declares (NNET_STREAM_DEPTH) holds at most that many elements: read
// blocks while the stream is empty, write while it is full, as in hardware. Streams without a declared depth (hls4ml's own,
// the testbench's) are unbounded.
//
// Deadlock: when no thread can run (each is blocked on a stream, or waits for a region whose
// processes are) and no stream has moved for deadlock_timeout, the blocked streams are printed
// ("deadlock: 'zx' full (depth 4) <- writer lstm_input_maps<CONFIG_T> blocked; ...") and the
// program exits with deadlock_exit_code: it never hangs. At exit, the largest occupancy each
// bounded stream reached is printed.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#define NNET_THREADED_CSIM 1

namespace threaded_csim {

const std::chrono::seconds deadlock_timeout(2);
const std::chrono::milliseconds poll_interval(50);
const int deadlock_exit_code = 3;

// Thrown out of a blocked read or write when the program ends (free_running's destructor), to
// end the free-running threads.
struct stopped {};

// The process the calling thread runs: its function's name ("main" for the program's thread).
inline std::string &current_process() {
    thread_local std::string name = "main";
    return name;
}

// What every stream shares, whatever its element type; guarded by the monitor's mutex.
class fifo {
  public:
    explicit fifo(const std::string &name) : name_(name), depth_(0), max_occupancy_(0) {}
    virtual ~fifo() {}
    const std::string &name() const { return name_; }
    unsigned depth() const { return depth_; } // 0: unbounded
    virtual size_t occupancy() const = 0;
    bool is_full() const { return depth_ != 0 && occupancy() >= depth_; }
    bool can(bool writing) const { return writing ? !is_full() : occupancy() != 0; }

  protected:
    std::string name_;
    unsigned depth_;
    size_t max_occupancy_;
    std::condition_variable readable_, writable_;
};

// A thread waiting on a stream.
struct blocked_on {
    const fifo *stream;
    bool writing;
    const std::string *process; // current_process() of the thread
};

// The threads' bookkeeping: one mutex for every stream (a region has few threads), the threads
// that can run, the stream moves, the blocked threads.
class monitor {
  public:
    std::mutex mutex;

    ~monitor() {
        for (const auto &entry : max_occupancy_) {
            std::printf("threaded C-sim: FIFO '%s' depth %u, max occupancy %zu\n", entry.first.first.c_str(),
                        entry.first.second, entry.second);
        }
    }

    // Block (mutex held by `lock`) until `why.stream` can be read or written, woken through `cv`.
    void wait(std::unique_lock<std::mutex> &lock, std::condition_variable &cv, const blocked_on &why) {
        if (why.stream->can(why.writing)) {
            return;
        }
        running_--;
        blocked_.push_back(&why);
        unsigned long long seen = moves_;
        std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
        while (!why.stream->can(why.writing)) {
            cv.wait_for(lock, poll_interval);
            if (stopping_) {
                blocked_.erase(std::find(blocked_.begin(), blocked_.end(), &why));
                throw stopped();
            }
            if (moves_ != seen) {
                seen = moves_;
                since = std::chrono::steady_clock::now();
            } else if (stuck() && std::chrono::steady_clock::now() - since >= deadlock_timeout) {
                report_deadlock();
            }
        }
        blocked_.erase(std::find(blocked_.begin(), blocked_.end(), &why));
        running_++;
    }

    void moved() { moves_++; } // mutex held

    // The largest occupancy of a bounded stream, kept per name and depth when it is destroyed.
    void record(const std::string &name, unsigned depth, size_t occupancy) {
        std::lock_guard<std::mutex> lock(mutex);
        size_t &max = max_occupancy_[std::make_pair(name, depth)];
        max = std::max(max, occupancy);
    }

    // The calling thread hands its turn to the `processes` threads it starts, and waits for them.
    void start(size_t processes) {
        std::lock_guard<std::mutex> lock(mutex);
        running_ += processes - 1;
    }

    // The calling thread starts `processes` threads that run beside it (a free-running region).
    void start_beside(size_t processes) {
        std::lock_guard<std::mutex> lock(mutex);
        running_ += processes;
    }

    // From now on, a thread blocked on a stream throws `stopped` (within poll_interval).
    void stop() {
        std::lock_guard<std::mutex> lock(mutex);
        stopping_ = true;
    }

    // A process returned; the last of its region hands the turn back to the waiting caller.
    void finish(size_t &alive) {
        std::lock_guard<std::mutex> lock(mutex);
        if (--alive != 0) {
            running_--;
        }
    }

  private:
    unsigned running_ = 1; // threads not blocked: the program's own, at first
    bool stopping_ = false;
    unsigned long long moves_ = 0;
    std::vector<const blocked_on *> blocked_;
    std::map<std::pair<std::string, unsigned>, size_t> max_occupancy_;

    // No thread can run: none is running, and no blocked one has been unblocked yet.
    bool stuck() const {
        return running_ == 0 && std::none_of(blocked_.begin(), blocked_.end(),
                                             [](const blocked_on *b) { return b->stream->can(b->writing); });
    }

    [[noreturn]] void report_deadlock() const {
        std::fflush(stdout);
        std::fprintf(stderr,
                     "deadlock: no stream moved for %lld s and no process can run:", (long long)deadlock_timeout.count());
        const char *separator = " ";
        for (const blocked_on *b : blocked_) {
            if (b->writing) {
                std::fprintf(stderr, "%s'%s' full (depth %u) <- writer %s blocked", separator, b->stream->name().c_str(),
                             b->stream->depth(), b->process->c_str());
            } else {
                std::fprintf(stderr, "%s'%s' empty <- reader %s blocked", separator, b->stream->name().c_str(),
                             b->process->c_str());
            }
            separator = "; ";
        }
        std::fprintf(stderr, "\n");
        std::_Exit(deadlock_exit_code);
    }
};

// The one monitor of the program (an inline function's static: shared by every translation unit).
inline monitor &the_monitor() {
    static monitor instance;
    return instance;
}

// A process of a region: its call as written (for messages) and the call.
struct process {
    process(const char *call, const std::function<void()> &body) : call(call), body(body) {}
    const char *call;
    std::function<void()> body;
};

// The name a process's thread goes by in messages: its function's name (of a call written in
// parentheses too).
inline void name_process(const char *call) {
    const std::string text = call;
    const size_t start = text.find_first_not_of("( ");
    current_process() = text.substr(start, text.find('(', start) - start);
}

// Run a region's processes, each on its own thread, and return when all have. A process stopped
// at the program's end (inside a free-running one) stops the region's caller too.
inline void dataflow(std::initializer_list<process> processes) {
    monitor &monitor = the_monitor();
    monitor.start(processes.size());
    size_t alive = processes.size(); // guarded by the monitor's mutex
    bool stopped_inside = false;     // likewise
    std::vector<std::thread> threads;
    for (const process &p : processes) {
        threads.emplace_back([&monitor, &alive, &stopped_inside, p] {
            name_process(p.call);
            try {
                p.body();
            } catch (const stopped &) {
                std::lock_guard<std::mutex> lock(monitor.mutex);
                stopped_inside = true;
            }
            monitor.finish(alive);
        });
    }
    for (std::thread &thread : threads) {
        thread.join();
    }
    if (stopped_inside) {
        throw stopped();
    }
}

// A free-running region (NNET_FREE_RUNNING3, a function's static): its processes start when it
// is constructed, at the region's first invocation, each on a thread that calls it again as soon
// as it returns; they end when the program does (the static's destructor).
class free_running {
  public:
    free_running(std::initializer_list<process> processes) {
        monitor &monitor = the_monitor();
        monitor.start_beside(processes.size());
        for (const process &p : processes) {
            threads_.emplace_back([p] {
                name_process(p.call);
                try {
                    for (;;) {
                        p.body();
                    }
                } catch (const stopped &) {
                }
            });
        }
    }
    free_running(const free_running &) = delete;
    free_running &operator=(const free_running &) = delete;

    ~free_running() {
        the_monitor().stop();
        for (std::thread &thread : threads_) {
            thread.join();
        }
    }

  private:
    std::vector<std::thread> threads_;
};

} // namespace threaded_csim

namespace hls {

template <typename T> class stream : public threaded_csim::fifo {
  public:
    stream() : stream("hls_stream") {}
    stream(const std::string &name) : fifo(name), monitor_(threaded_csim::the_monitor()) {}
    stream(const stream &) = delete;
    stream &operator=(const stream &) = delete;

    ~stream() {
        if (!data_.empty()) { // as hls4ml's sequential stream
            std::printf("WARNING: Hls::stream '%s' contains leftover data, which may result in RTL simulation "
                        "hanging.\n",
                        name_.c_str());
        }
        if (depth_ != 0) {
            monitor_.record(name_, depth_, max_occupancy_);
        }
    }

    // Bound the stream to `depth` elements (NNET_STREAM_DEPTH); before it is used.
    void set_depth(unsigned depth) {
        std::lock_guard<std::mutex> lock(monitor_.mutex);
        depth_ = depth;
    }

    size_t occupancy() const override { return data_.size(); }

    bool empty() {
        std::lock_guard<std::mutex> lock(monitor_.mutex);
        return data_.empty();
    }
    bool full() {
        std::lock_guard<std::mutex> lock(monitor_.mutex);
        return is_full();
    }
    size_t size() {
        std::lock_guard<std::mutex> lock(monitor_.mutex);
        return data_.size();
    }

    T read() {
        std::unique_lock<std::mutex> lock(monitor_.mutex);
        monitor_.wait(lock, readable_, threaded_csim::blocked_on{this, false, &threaded_csim::current_process()});
        T value = data_.front();
        data_.pop_front();
        monitor_.moved();
        writable_.notify_all();
        return value;
    }
    void read(T &value) { value = read(); }

    void write(const T &value) {
        std::unique_lock<std::mutex> lock(monitor_.mutex);
        monitor_.wait(lock, writable_, threaded_csim::blocked_on{this, true, &threaded_csim::current_process()});
        data_.push_back(value);
        max_occupancy_ = std::max(max_occupancy_, data_.size());
        monitor_.moved();
        readable_.notify_all();
    }

  private:
    threaded_csim::monitor &monitor_;
    std::deque<T> data_;
};

} // namespace hls

#endif
