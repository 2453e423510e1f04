package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"hastack.dev/hastack/internal/lab"
)

func main() {
	n, _ := strconv.Atoi(os.Args[2])
	if os.Args[1] == "down" {
		l, err := lab.Load(lab.DefaultDir("try"))
		fmt.Println(err)
		fmt.Println(l.Down())
		return
	}
	t := time.Now()
	l, err := lab.Up(context.Background(), lab.Options{Name: "try", Nodes: n})
	fmt.Println(time.Since(t), err)
	if l != nil {
		fmt.Println(l.Nodes)
	}
}
