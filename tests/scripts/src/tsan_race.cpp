// Positive control for tsan.sh: a deliberate data race that ThreadSanitizer must report,
// proving that the sanitizer is active and that its reports are seen by the script.
#include <thread>
int shared_counter;
int main() {
    std::thread t([] { for (int i = 0; i < 1000; i++) shared_counter++; });
    for (int i = 0; i < 1000; i++) shared_counter++;
    t.join();
    return shared_counter == -1;
}
