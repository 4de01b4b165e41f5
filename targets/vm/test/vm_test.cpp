// The kernel catalogue, the config check and the guest protocol, without a boot.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "../src/guest_protocol.h"
#include "../src/kernel_catalogue.h"
#include "../src/qemu.h"

namespace fs = std::filesystem;
using namespace syncprobe;

namespace {

const std::string kData = SYNCPROBE_TEST_DATA_DIR;

struct Env : ::testing::Environment {
  void SetUp() override { setenv("SYNCPROBE_DATA", kData.c_str(), 1); }
};
const auto* env = ::testing::AddGlobalTestEnvironment(new Env);

std::string temp_dir() {
  char tmpl[] = "/tmp/vm_test.XXXXXX";
  return mkdtemp(tmpl);
}

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

}  // namespace

TEST(Catalogue, ListsTheSeriesOfTheIssueOldestFirst) {
  const vm::Catalogue& c = vm::catalogue();
  std::vector<std::string> names;
  for (const auto& s : c.series) names.push_back(s.name);
  for (const char* s : {"5.10", "6.1", "6.12", "6.16", "6.17", "6.18", "7.2", "7.3"})
    EXPECT_NE(std::find(names.begin(), names.end(), s), names.end()) << s;
  EXPECT_EQ(names.front(), "5.10");
  EXPECT_EQ(c.find("6.12")->suites, (std::vector<std::string>{"trixie", "bookworm-backports"}));
  EXPECT_EQ(c.layouts.at("split").with.size(), 2u);
}

TEST(Catalogue, ReleaseRegexKeepsSeriesApartAndSkipsFlavours) {
  const vm::Catalogue& c = vm::catalogue();
  const std::regex r61(c.release_regex("6.1")), r612(c.release_regex("6.12"));
  EXPECT_TRUE(std::regex_match("6.1.0-50-amd64", r61));
  EXPECT_FALSE(std::regex_match("6.12.117+deb13-amd64", r61));
  EXPECT_TRUE(std::regex_match("6.12.117+deb13-amd64", r612));
  EXPECT_TRUE(std::regex_match("6.12.90+deb12.1-amd64", r612));
  EXPECT_FALSE(std::regex_match("6.1.0-50-cloud-amd64", r61));
  EXPECT_FALSE(std::regex_match("6.12.117+deb13-rt-amd64", r612));
  EXPECT_TRUE(std::regex_match("5.10.0-32-amd64", std::regex(c.release_regex("5.10"))));
}

TEST(Catalogue, MalformedFileNamesFileLineAndFix) {
  const std::string d = temp_dir();
  std::string text;
  {
    std::ifstream in(kData + "/kernels.toml");
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  const auto at = text.find("layout = \"split\"\n\n[[series]]\nname = \"7.3\"");
  ASSERT_NE(at, std::string::npos);
  std::string bad = text;
  bad.replace(at, 16, "layout = \"splt\"");
  write(d + "/kernels.toml", bad);
  try {
    vm::load_catalogue(d + "/kernels.toml");
    FAIL() << "accepted an unknown layout";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(d + "/kernels.toml:"), std::string::npos) << m;
    EXPECT_NE(m.find("unknown layout 'splt'"), std::string::npos) << m;
    EXPECT_NE(m.find("one of image-signed, image-unsigned, split"), std::string::npos) << m;
  }
  fs::remove_all(d);
}

TEST(Catalogue, LocatesFilesOfBothLayouts) {
  const std::string d = temp_dir();
  write(d + "/a/boot/vmlinuz-5.10.0-32-amd64", "k");
  write(d + "/a/lib/modules/5.10.0-32-amd64/modules.dep", "");
  write(d + "/b/usr/lib/modules/7.3.4+deb13-amd64/vmlinuz.unsigned", "k");
  write(d + "/b/usr/lib/modules/7.3.4+deb13-amd64/config", "CONFIG_X=y\n");
  vm::Installed a, b;
  vm::locate_files(d + "/a", "5.10.0-32-amd64", a);
  vm::locate_files(d + "/b", "7.3.4+deb13-amd64", b);
  EXPECT_EQ(a.vmlinuz, d + "/a/boot/vmlinuz-5.10.0-32-amd64");
  EXPECT_EQ(a.config, "");
  EXPECT_EQ(b.vmlinuz, d + "/b/usr/lib/modules/7.3.4+deb13-amd64/vmlinuz.unsigned");
  EXPECT_EQ(b.modules, d + "/b/usr/lib/modules/7.3.4+deb13-amd64");
  EXPECT_EQ(b.config, d + "/b/usr/lib/modules/7.3.4+deb13-amd64/config");
  EXPECT_EQ(vm::releases_under(d + "/b"), std::vector<std::string>{"7.3.4+deb13-amd64"});
  fs::remove_all(d);
}

TEST(Catalogue, ConfigCheckNamesEachMissingOption) {
  const std::string d = temp_dir();
  std::string config;
  for (const auto& r : vm::catalogue().requires_)
    if (r.option != "CONFIG_FUSE_FS" && r.option != "CONFIG_BTRFS_FS") config += r.option + "=m\n";
  config += "# CONFIG_FUSE_FS is not set\n";
  write(d + "/config", config);
  vm::Installed k;
  k.config = d + "/config";
  auto missing = vm::missing_requirements(k);
  ASSERT_EQ(missing.size(), 2u);
  EXPECT_EQ(missing[0].option, "CONFIG_FUSE_FS");
  EXPECT_EQ(missing[1].option, "CONFIG_BTRFS_FS");
  EXPECT_EQ(missing[1].fs, "btrfs");
  EXPECT_NE(vm::describe(missing[0]).find("FUSE block device"), std::string::npos);
  fs::remove_all(d);
}

TEST(Catalogue, WithoutConfigModulesAndBuiltinsDecide) {
  const std::string d = temp_dir();
  std::string builtin, dep;
  for (const auto& r : vm::catalogue().requires_) {
    if (r.option == "CONFIG_XFS_FS") continue;  // absent
    if (r.option == "CONFIG_FUSE_FS") builtin += "kernel/fs/fuse/fuse.ko\n";
    else dep += "kernel/x/" + r.modules.back() + ".ko.xz:\n";
  }
  write(d + "/modules.builtin", builtin);
  write(d + "/modules.dep", dep);
  vm::Installed k;
  k.modules = d;
  auto missing = vm::missing_requirements(k);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].option, "CONFIG_XFS_FS");
  fs::remove_all(d);
}

TEST(Qemu, ACommaInAnImagePathCannotAddDriveOptions) {
  EXPECT_EQ(vm::drive_arg("/s/r1/scratch.img", "if=virtio,format=raw"), "file=/s/r1/scratch.img,if=virtio,format=raw");
  EXPECT_EQ(vm::drive_arg("/s/x,format=qcow2,/scratch.img", "if=virtio,format=raw"),
            "file=/s/x,,format=qcow2,,/scratch.img,if=virtio,format=raw");
}

TEST(GuestProtocol, InputRoundTripsAndIsPaddedToPages) {
  vm::GuestInput in;
  in.step_timeout_ms = 12345;
  Case c;
  c.id = "some-case";
  c.file = "cases/some-case.toml";
  in.cases.push_back(c);
  FilesystemSpec f;
  f.name = "ext4:data=journal";
  f.fs = "ext4";
  f.options = "data=journal";
  f.mkfs = {"mkfs.ext4", "{device}"};
  in.targets.push_back({"vm:6.1:ext4:data=journal", f});
  const std::string disk = vm::encode_input(in);
  EXPECT_EQ(disk.size() % 4096, 0u);
  const vm::GuestInput back = vm::decode_input(disk);
  EXPECT_EQ(back.step_timeout_ms, 12345);
  ASSERT_EQ(back.cases.size(), 1u);
  EXPECT_EQ(back.cases[0].id, "some-case");
  ASSERT_EQ(back.targets.size(), 1u);
  EXPECT_EQ(back.targets[0].fs.options, "data=journal");
  EXPECT_EQ(back.targets[0].fs.mkfs_argv("/dev/x").back(), "/dev/x");
}

TEST(GuestProtocol, OutputSkipsATornLastLine) {
  CaseResult r;
  r.case_id = "x";
  r.target = "vm:6.1:xfs";
  r.status = CaseStatus::completed;
  std::string text = vm::hello_line("6.1.0-50-amd64") + vm::result_line(r);
  std::vector<std::string> lines;
  for (size_t s = 0, nl; (nl = text.find('\n', s)) != std::string::npos; s = nl + 1)
    lines.push_back(text.substr(s, nl - s));
  lines.push_back("{\"type\":\"resu");  // the guest died mid-write
  const vm::GuestOutput out = vm::decode_output(lines);
  EXPECT_EQ(out.kernel, "6.1.0-50-amd64");
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].target, "vm:6.1:xfs");
  EXPECT_FALSE(out.done);
}
