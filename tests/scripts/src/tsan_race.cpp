// Positive control for tsan.sh: a deliberate data race that ThreadSanitizer must report,
// proving that the sanitizer is active and that its reports are seen by the script.
// Both threads wait for each other (relaxed atomics: no happens-before for TSan) and then
// increment a plain counter many times, so their accesses surely overlap in time.
#include <atomic>
#include <thread>
volatile int shared_counter;
std::atomic<int> arrived{0};
static void race() {
    arrived.fetch_add(1, std::memory_order_relaxed);
    while (arrived.load(std::memory_order_relaxed) < 2) {}
    for (int i = 0; i < 100000; i++) shared_counter = shared_counter + 1;
}
int main() {
    std::thread t(race);
    race();
    t.join();
    return shared_counter == -1;
}
